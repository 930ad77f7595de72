"""``NATS_URL`` as a seed list: the servers, the one identity, and mistakes refused with the password masked."""

from __future__ import annotations

import pytest

from libs.common.bus import BusMisconfigured
from libs.common.bus.seeds import SeedList, parse_seed_list, redact


def test_one_url_is_a_list_of_one_and_keeps_its_credentials_apart() -> None:
    assert parse_seed_list("nats://gateway:pw@nats:4222") == SeedList(["nats://nats:4222"], "gateway", "pw")
    assert parse_seed_list("nats://127.0.0.1:4222") == SeedList(["nats://127.0.0.1:4222"])


def test_a_seed_list_gives_every_server_and_one_identity() -> None:
    seeds = parse_seed_list("nats://executor:pw@10.0.0.1:4222, nats://executor:pw@10.0.0.2:4222,nats://10.0.0.3:4222")
    assert seeds.servers == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
    assert (seeds.user, seeds.password, seeds.token) == ("executor", "pw", None)


def test_a_user_without_a_password_is_a_token_and_a_bare_host_is_nats() -> None:
    seeds = parse_seed_list("s3cr3t@n1:4222,tls://n2:4222")
    assert seeds.servers == ["nats://n1:4222", "tls://n2:4222"]
    assert (seeds.user, seeds.password, seeds.token) == (None, None, "s3cr3t")


@pytest.mark.parametrize(
    "url",
    [
        "nats://gateway:pw1@n1:4222,nats://gateway:pw2@n2:4222",  # two identities
        "nats://gateway:pw1@n1:4222,nats://executor:pw1@n2:4222",
        "nats://gateway:pw1@n1:4222,",  # an empty entry
        "nats://gateway:pw1@n1:42x2",  # a port that is no number
        "nats://gateway:pw1@:4222",  # no host
        "nats://gateway:pw1@n1:4222,ws://n2:80",  # websocket mixed with plain
        "http://gateway:pw1@n1:4222",
    ],
)
def test_mistakes_are_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(BusMisconfigured) as caught:
        parse_seed_list(url)
    assert "pw1" not in str(caught.value)
    assert "NATS_URL" in str(caught.value)


def test_redact_masks_every_entry() -> None:
    assert redact("nats://a:pw@n1:4222,nats://n2:4222,tok@n3:4222") == "nats://***@n1:4222,nats://n2:4222,***@n3:4222"
