"""etcd's v3 gRPC API as this project speaks it: proto files and the Python code
`grpc_tools.protoc` generates from them (`nox -s protos`; never edited by hand)."""
