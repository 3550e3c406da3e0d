"""Single sign-on through an AWS Application Load Balancer, with no egress from Airflow.

The ALB's `authenticate-oidc` action logs the user in with the IdP and forwards the user's
claims as `x-amzn-oidc-data`, an ES256 JWT it signs. `albauth.manager.AlbAuthManager` is an
Airflow 3.1 auth manager whose login route trusts only that token, verified against ALB
public keys held in a store reachable through VPC endpoints (S3 or SSM) and filled from
outside the VPC by `alb-keys fill`.

    token.py      verify one ALB token (alg, kid, signature, signer, iss, client, exp)
    keystore.py   where the public keys live (s3:// or ssm:), and the in-memory cache
    roles.py      IdP groups -> Admin / Op / User / Viewer, and what each role may do
    settings.py   the [alb_auth] configuration (AIRFLOW__ALB_AUTH__*)
    manager.py    the auth manager Airflow loads
    routes.py     its login and logout routes
    keyfill.py    `alb-keys`: fetch the ALB's public keys and store them (runs where the internet is)
    fake_alb.py   a local stand-in for the ALB's authenticate-oidc, for docker compose and tests
"""
