// A state and an application: the loop runs the state's polled parts
// (TCP's sockets, say) once, after the stages.

/// An IPv4 and an IPv6 branch that share the state's sockets.
#[pipeline]
pub struct Host {
    port: MemoryPort,
    #[state]
    state: HostState,
    #[app]
    app: Echo,
    front: Front,
}
