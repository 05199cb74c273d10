"""A real SMTP server for leadrelay's tests: aiosmtpd writing every message to a Maildir.

Usage: smtp_fixture.py MAILDIR PORT [CERT KEY]
Requires AUTH (user "mailer", password "s3cret"); with CERT and KEY it also requires STARTTLS
before AUTH. Prints "READY <port>" once listening; stops on SIGTERM.
"""
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

maildir, port = sys.argv[1], int(sys.argv[2])
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(maildir, sub), exist_ok=True)


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret")
    # handled=False: aiosmtpd itself answers 235 or 535 (True would mean "already answered").
    return AuthResult(success=ok, handled=False)


context = None
if len(sys.argv) == 5:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[3], sys.argv[4])

controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=port,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=context is not None,
    tls_context=context,
    require_starttls=context is not None,
)
stop = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, stop)
controller.start()
print("READY", port, flush=True)
signal.sigwait(stop)
controller.stop()
