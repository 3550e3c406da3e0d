from tests.support.trees import cli, live_snapshot, tree_digests, write_tree


def test_publish_then_sync(tmp_path, source, s3_server):
    files = {"a.py": "print(1)\n", "pkg/b.py": "x = 2\n"}
    write_tree(tmp_path / "src", files)
    assert cli("publish", tmp_path / "src", source) == 0
    assert cli("sync", "--once", "--source", source, "--target", tmp_path / "root") == 0
    assert live_snapshot(tmp_path / "root") == tree_digests(files)
