"""A dev-only Gateway API implementation in the NGINX Gateway Fabric shape.

Real nginx (Debian's package) on 127.0.0.1 is the data plane; a small controller watches
GatewayClass, Gateway, HTTPRoute, ReferenceGrant, Service, EndpointSlice and Pod objects,
renders nginx's configuration (weighted upstreams per route rule, resolved to loopback pod
addresses as the EndpointSlice controller resolves Services: see backends.py for why the pods
are read directly), reloads nginx gracefully on change and writes the status a conformant
implementation writes. The operator only writes HTTPRoutes: on a real cluster any conformant
implementation takes this one's place. Dev infrastructure: the operator never imports it.
Layout: attach (listeners), backends (backendRefs → endpoints), plan and status (pure),
nginx_conf (pure rendering), nginx (the process), controller (the loop: `DevGateway`).
"""
