//! Host bindings generated from the WIT contract, one module per version of it (`wit/v0.1.0`,
//! `wit/v0.2.0`, the one source shared with the sdk). The host's own types are 0.2's; what a
//! 0.1 component says is converted up in `v0_1`.

/// `gov:adapter@0.1.0`: what components built before materials export and import.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0",
        world: "adapter",
        imports: { default: async },
        exports: { default: async },
    });
}

/// `gov:adapter@0.2.0`: materials, supplements, withdrawals.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "adapter",
        imports: { default: async },
        exports: { default: async },
    });
}
