"""Verify recorded deliveries with the standardwebhooks library (code we did not write).

Usage: verify_webhooks.py RECORDS_JSON
RECORDS_JSON is a list of {"secret", "headers": {name: value}, "body_b64"}.
Prints one line per record and exits 1 if any fails.
"""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook

records = json.load(open(sys.argv[1]))
failed = 0
for i, rec in enumerate(records):
    body = base64.b64decode(rec["body_b64"])
    try:
        payload = Webhook(rec["secret"]).verify(body, rec["headers"])
        print("ok", i, rec["headers"].get("webhook-id"), json.dumps(payload, sort_keys=True))
    except Exception as e:  # the library raises plain errors for malformed entries too
        failed += 1
        print("FAIL", i, type(e).__name__, e)
print(f"verified {len(records) - failed} of {len(records)}")
sys.exit(1 if failed else 0)
