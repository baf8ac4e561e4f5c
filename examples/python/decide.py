"""A decision, its response and a refused call, over native gRPC from Python.

    ./generate.sh                       # once: writes ./generated
    PYTHONPATH=generated python3 decide.py

Settings come from the environment: KAIREON_GRPC (host:port, default 127.0.0.1:50051), KAIREON_TENANT
(default demo) and KAIREON_API_KEY (the key the service printed at its first start).
"""

import os
import sys

import grpc
from google.rpc import status_pb2

from kaireon.v1 import errors_pb2, recommend_pb2, recommend_pb2_grpc, respond_pb2, respond_pb2_grpc


def error_detail(err):
    """The kaireon.v1.ErrorDetail a failed call carries in its grpc-status-details-bin trailer: the same
    code and field violations as the REST error body. None if the call carried none."""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)  # grpcio hands -bin values over already decoded
        for detail in status.details:
            if detail.Is(errors_pb2.ErrorDetail.DESCRIPTOR):
                found = errors_pb2.ErrorDetail()
                detail.Unpack(found)
                return found
    return None


def main():
    target = os.environ.get("KAIREON_GRPC", "127.0.0.1:50051")
    tenant = os.environ.get("KAIREON_TENANT", "demo")
    api_key = os.environ.get("KAIREON_API_KEY")
    if not api_key:
        sys.exit("set KAIREON_API_KEY to a key of tenant " + tenant)
    # Every call names its tenant and key in metadata.
    metadata = (("x-tenant-id", tenant), ("x-api-key", api_key))

    with grpc.insecure_channel(target) as channel:
        recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
        respond = respond_pb2_grpc.RespondServiceStub(channel)

        request = recommend_pb2.RecommendRequest(customer_id="cust_12345", channel_id="ch_email", placement="hero_offer")
        request.max_offers.value = 3  # a wrapper type: unset means "the flow's default"
        request.attributes.update({"tier": "gold", "device": "mobile"})
        answer = recommend.Recommend(request, metadata=metadata, timeout=5)
        print(f"{len(answer.recommendations)} offers for {answer.customer_id} from {answer.decision_flow_id}")
        for rec in answer.recommendations:
            print(f"  {rec.rank}. {rec.offer_id} ({rec.offer_name}) score {rec.score:.3f} creative {rec.creative_id}")
        if not answer.recommendations:
            sys.exit("no offer was recommended")

        top = answer.recommendations[0]
        recorded = respond.Respond(
            respond_pb2.RespondRequest(
                customer_id=answer.customer_id,
                offer_id=top.offer_id,
                channel_id=top.channel_id,
                creative_id=top.creative_id,
                outcome_type="click",
            ),
            # Retrying with the same key records the interaction once.
            metadata=metadata + (("idempotency-key", f"py-example-{answer.processed_at.ToMilliseconds()}"),),
            timeout=5,
        )
        print(f"recorded {recorded.outcome_type} on {recorded.offer_id} as {recorded.id}")

        try:
            recommend.Recommend(recommend_pb2.RecommendRequest(channel_id="ch_email"), metadata=metadata, timeout=5)
        except grpc.RpcError as err:
            detail = error_detail(err)
            print(f"refused: {err.code().name} {err.details()}")
            if detail is not None:
                print(f"  code {detail.code}, request {detail.request_id}")
                for violation in detail.details:
                    print(f"  {violation.field}: {violation.message}")
        else:
            sys.exit("a Recommend without customer_id was accepted")


if __name__ == "__main__":
    main()
