"""Numbered releases published for real, and what ROOT/current points at."""

import os

from s3sync.client import ClientSettings, make_client
from s3sync.location import S3Location
from s3sync.publish import Publisher
from tests.support.trees import wait_for, write_tree


class Releases:
    """Publishes numbered trees and remembers what each release id must contain."""

    def __init__(self, source: str, workdir):
        self.publisher = Publisher(make_client(ClientSettings()), S3Location.parse(source))
        self.workdir = workdir
        self.by_number: dict[int, dict[str, bytes]] = {}
        self.number_of: dict[str, int] = {}

    def publish(self, number: int, tree: dict[str, bytes]) -> str:
        folder = self.workdir / f"tree{number}"
        write_tree(folder, tree)
        release = self.publisher.publish(folder).release
        self.by_number[number] = tree
        self.number_of[release] = number
        return release


def live_release(target) -> str | None:
    try:
        return os.readlink(target / "current").rsplit("/", 1)[-1]
    except FileNotFoundError:
        return None


def wait_live(target, release: str, timeout: float = 30) -> None:
    wait_for(lambda: live_release(target) == release, timeout, step=0.005, what=f"{release} to go live")
