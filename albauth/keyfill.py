"""`alb-keys`: put the ALB's public keys where the api-server reads them.

The ALB publishes each signing key only on the internet, at
https://public-keys.auth.elb.REGION.amazonaws.com/KID, which a NAT-free VPC cannot reach. So
this runs where the internet is (a CI job on a schedule, or by hand) and writes the keys
to the store the api-server reads through a VPC endpoint. Which kids to fetch: those given
with --kid, and those the api-server met and left a `wanted/<kid>` marker for.

    alb-keys fill --store s3://BUCKET/alb-auth/keys.json --region eu-west-1 [--kid KID ...]
    alb-keys list --store s3://BUCKET/alb-auth/keys.json

Every flag has an environment variable:
    --store     ALB_KEYS_STORE    s3://BUCKET/KEY or ssm:/NAME (the api-server's [alb_auth] key_store)
    --region    ALB_KEYS_REGION   the load balancer's region (default AWS_REGION)
    --kid       ALB_KEYS_KIDS     key ids to fetch besides the wanted ones (comma-separated in the env)
    --keys-url  ALB_KEYS_URL      where a key is fetched, {region} and {kid} filled in
                                  (default https://public-keys.auth.elb.{region}.amazonaws.com/{kid})
Exit 0 when every key asked for is stored, 1 when one could not be fetched, 2 on bad input.
"""

import argparse
import os
import sys
import urllib.error
import urllib.request

from albauth.keystore import KeyStore, Location, StoreError, public_key
from albauth.token import KEY_ID

DEFAULT_KEYS_URL = "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}"
MAX_KEY_BYTES = 16 * 1024


class NotPublished(Exception):
    """The key URL answered 404: no load balancer signs with this kid."""


def fetch(url: str) -> str:
    """The PEM at `url`, checked to be a P-256 public key; NotPublished, or OSError/ValueError."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            pem = response.read(MAX_KEY_BYTES + 1).decode("ascii", errors="replace")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise NotPublished(url) from None
        raise OSError(f"{url} answered {error.code}") from None
    if len(pem) > MAX_KEY_BYTES:
        raise ValueError(f"{url} sent more than {MAX_KEY_BYTES} bytes")
    public_key(pem)
    return pem


def fill(store: KeyStore, kids: list[str], keys_url: str, region: str, say=print) -> bool:
    """Fetch the missing keys of `kids` and of the wanted markers; False if one failed."""
    keys = store.read()
    wanted = store.wanted()
    added: dict[str, str] = {}
    settled = set(keys)  # a wanted kid is settled once stored, or once it is known not to exist
    ok = True
    for kid in sorted((set(kids) | set(wanted)) - set(keys)):
        url = keys_url.format(region=region, kid=kid)
        try:
            added[kid] = fetch(url)
        except NotPublished:
            settled.add(kid)
            ok = ok and kid not in kids
            say(f"kid {kid}: not published at {url}")
            continue
        except (OSError, ValueError) as error:
            ok = False
            say(f"kid {kid}: {error}")
            continue
        settled.add(kid)
        say(f"kid {kid}: added")
    if added:
        store.write({**keys, **added})
    for kid in set(wanted) & settled:
        store.unwant(kid)
    say(f"{store.location.url}: {len(keys) + len(added)} keys, {len(added)} new")
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="alb-keys", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("fill", "fetch missing and wanted keys into the store"), ("list", "show the store")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--store", default=os.environ.get("ALB_KEYS_STORE"), help="$ALB_KEYS_STORE")
    fill_command = commands.choices["fill"]
    region = os.environ.get("ALB_KEYS_REGION") or os.environ.get("AWS_REGION")
    fill_command.add_argument("--region", default=region, help="$ALB_KEYS_REGION")
    env_kids = [kid for kid in os.environ.get("ALB_KEYS_KIDS", "").split(",") if kid]
    fill_command.add_argument("--kid", action="append", default=None, help="$ALB_KEYS_KIDS (repeatable)")
    keys_url = os.environ.get("ALB_KEYS_URL", DEFAULT_KEYS_URL)
    fill_command.add_argument("--keys-url", default=keys_url, help="$ALB_KEYS_URL")
    args = parser.parse_args(argv)
    try:
        if not args.store:
            raise StoreError("--store (ALB_KEYS_STORE) is required")
        store = KeyStore(Location.parse(args.store))
        if args.command == "list":
            keys, wanted = store.read(), store.wanted()
            for kid in sorted(keys):
                print(f"{kid}\tstored")
            for kid in wanted:
                print(f"{kid}\twanted")
            return
        kids = args.kid if args.kid is not None else env_kids
        _check_fill_args(kids, args.region, args.keys_url)
        ok = fill(store, kids, args.keys_url, args.region)
    except StoreError as error:
        print(f"alb-keys: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if ok else 1)


def _check_fill_args(kids: list[str], region: str | None, keys_url: str) -> None:
    for kid in kids:
        if not KEY_ID.fullmatch(kid):
            raise StoreError(f"--kid {kid!r} is not a key id (letters, digits, '-', '_')")
    if not region and "{region}" in keys_url:
        raise StoreError("--region (ALB_KEYS_REGION or AWS_REGION) is required")
    if "{kid}" not in keys_url or not keys_url.startswith(("https://", "http://")):
        raise StoreError(f"--keys-url {keys_url!r} must be an http(s) URL with {{kid}} in it")
