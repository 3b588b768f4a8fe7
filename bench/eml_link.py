"""Prints the last link starting with PREFIX in the text parts of the .eml files in DIR
(oldest file first), decoding quoted-printable and base64 as a mail client would."""
import email
import email.policy
import pathlib
import re
import sys

directory, prefix = sys.argv[1], sys.argv[2]
found = []
for path in sorted(pathlib.Path(directory).glob("*.eml"), key=lambda p: p.stat().st_mtime):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    if body is not None:
        found += re.findall(re.escape(prefix) + r"[A-Za-z0-9_-]+", body.get_content())
print(found[-1] if found else "")
