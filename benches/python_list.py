"""The same listing `check` does, with the official client (PyPI ngrok-api): every TLS
certificate, reserved domain and credential, 100 per page. Prints the counts."""
import sys

import ngrok

client = ngrok.Client(sys.argv[2], base_url=sys.argv[1])
certs = list(client.tls_certificates.list(limit="100"))
domains = list(client.reserved_domains.list(limit="100"))
creds = list(client.credentials.list(limit="100"))
print(len(certs), len(domains), len(creds))
