"""The execution builder: what cannot be unpacked (sdists, system packages) is built in BuildKit.

Talked to over BuildKit's own gRPC API with grpcio: `address` (where BuildKit is), `splice`
(the Docker Engine's HTTP/1.1 upgrade to h2c made into plain sockets grpcio can use),
`client` (the Control service), `session` (the services BuildKit calls back: FileSync,
FileSend, Auth), `llb` (build graphs), `status` (BuildKit's progress as Bakery's events).
Nothing here is imported by `bakery.bake`: grpc and the stubs load only when a build needs them.
"""
