#!/bin/sh
# The plain temporalio/server image does not create a namespace; refundflow uses `default`.
# (The worker registers refundflow's search attributes itself on start.)
set -eu
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" | grep -q SERVING; do sleep 1; done
temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" ||
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" --retention 30d
