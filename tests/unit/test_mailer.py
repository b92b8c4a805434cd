"""The message the mailer builds reads back as what was sent (subject, body, headers)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from activities.mailer import Mailer, OutgoingEmail
from settings import Settings

SUBJECTS = [
    "Facture F-2026-000123",
    "CRA validé — mission B-123 (2026-10) : 20,5 jours à 650 €",
    "Très long objet " + "é" * 60 + " et encore des mots pour le plier sur plusieurs lignes",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_built_message_parses_back_to_its_subject_body_and_headers(subject: str) -> None:
    body = "Bonjour Zoé,\n\nLe CRA de octobre est validé : 20,5 jours × 650 € HT.\n\n— L'équipe\n"
    sent = OutgoingEmail(
        recipients=["zoe@example.fr", "compta@example.fr"],
        subject=subject,
        body=body,
        message_id="<cra.validated.B-1.2026-10@contracting.localhost>",
        created_at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
    )
    raw = Mailer(Settings()).build(sent).as_bytes()

    assert all(len(line) <= 78 for line in raw.split(b"\n")), "header lines are folded"
    assert raw.isascii(), "8-bit text is encoded (quoted-printable, RFC 2047)"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed.get_body().get_content() == body  # type: ignore[union-attr]
    assert parsed["To"] == "zoe@example.fr, compta@example.fr"
    assert parsed["Message-ID"] == sent.message_id
    assert parsed["Date"].datetime == sent.created_at
