# eventyay: app/eventyay/config/settings.py (or wherever eventyay reads its environment).
#
# Where eventyay finds eventyay-bbb. Nothing here is a secret: the token is read from a file
# (a mounted Kubernetes Secret, or a file only the backend's user can read).
import os

# gRPC target. Several replicas behind a headless Service:
#   dns:///eventyay-bbb-headless.<namespace>.svc.cluster.local:50051
# The client balances calls round robin over every address DNS returns.
EVENTYAY_BBB_TARGET = os.environ.get("EVENTYAY_BBB_TARGET", "")
# File holding the BbbService bearer token (EVENTYAY_BBB_API_TOKEN of the service).
EVENTYAY_BBB_TOKEN_FILE = os.environ.get("EVENTYAY_BBB_TOKEN_FILE", "")
# TLS: the CA certificate(s) that signed the service's certificate; empty for the system roots.
EVENTYAY_BBB_CA_FILE = os.environ.get("EVENTYAY_BBB_CA_FILE", "")
# Plaintext: true only when the service's gRPC port has no certificate (it serves TLS when it
# has one, the chart's tls.existingSecret), with that port kept inside the cluster (or a mesh
# that encrypts for us).
EVENTYAY_BBB_INSECURE = os.environ.get("EVENTYAY_BBB_INSECURE", "false").lower() == "true"
