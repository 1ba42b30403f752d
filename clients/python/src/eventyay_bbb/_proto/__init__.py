"""Generated code of ``proto/eventyay/bbb/v1/bbb.proto`` (by ``clients/python/generate.py``).

Do not edit ``bbb_pb2.py``, ``bbb_pb2.pyi`` or ``bbb_pb2_grpc.py`` by hand: change the proto and
run the script. The public names are re-exported by :mod:`eventyay_bbb` (``eventyay_bbb.pb``).
"""
