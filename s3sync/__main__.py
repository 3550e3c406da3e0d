from s3sync.cli import main

raise SystemExit(main())
