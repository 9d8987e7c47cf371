"""Run on a test host, as another node would: one gRPC health check of a peer port, in
plaintext or over TLS pinned to a given certificate; prints the status code's name."""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT = 5.0


def main(mode: str, address: str, certificate_file: str = "") -> None:
    if mode == "plaintext":
        channel = grpc.insecure_channel(address)
    else:
        with open(certificate_file, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", "kizuna.node")])
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
            print("OK")
        except grpc.RpcError as exc:
            print(exc.code().name, exc.details())


if __name__ == "__main__":
    main(*sys.argv[1:])
