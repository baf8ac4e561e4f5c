"""A native gRPC client for kaireon.v1.RecommendService/Recommend in Python, on code generated from the
contract by grpc_tools.protoc (test/transports.test.ts generates it into a temporary directory and puts
that directory on PYTHONPATH).

    python3 recommend_client.py <host:port | http://host:port> <tenant> <api-key> <request-json>

On success it prints {"metadata": <initial metadata>, "response": <RecommendResponse as proto3 JSON>}
on stdout. On a failed call it prints {"code", "name", "details"} on stderr and exits with the gRPC
status code (always 1-16).
"""

import inspect
import json
import re
import sys

import grpc
from google.protobuf import json_format

from kaireon.v1 import recommend_pb2, recommend_pb2_grpc


def message_to_dict(message):
    """MessageToDict with unset scalars included, as the REST answer has them.

    The flag was renamed in protobuf 5.26 (including_default_value_fields ->
    always_print_fields_with_no_presence) and the old name later removed, so pick whichever the
    installed runtime has.
    """
    params = inspect.signature(json_format.MessageToDict).parameters
    flag = "always_print_fields_with_no_presence" if "always_print_fields_with_no_presence" in params else "including_default_value_fields"
    return json_format.MessageToDict(message, **{flag: True})


def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        return 64
    target, tenant, api_key, request_json = sys.argv[1:]
    target = re.sub(r"^https?://", "", target)

    # ParseDict maps the camelCase JSON (and the plain-object attributes Struct) like the server's
    # JSON decoder does.
    request = json_format.ParseDict(json.loads(request_json), recommend_pb2.RecommendRequest())
    with grpc.insecure_channel(target) as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        try:
            response, call = stub.Recommend.with_call(
                request,
                metadata=(("x-tenant-id", tenant), ("x-api-key", api_key)),
                timeout=10,
            )
        except grpc.RpcError as err:
            status = err.code()
            sys.stderr.write(json.dumps({"code": status.value[0], "name": status.name, "details": err.details()}) + "\n")
            return status.value[0]
    out = {"metadata": dict(call.initial_metadata()), "response": message_to_dict(response)}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
