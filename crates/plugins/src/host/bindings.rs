//! Host bindings generated from the WIT contract, one module per version of it (`wit/v0.1.0`,
//! `wit/v0.2.0`, `wit/v0.3.0`, the one source shared with the sdk). The host's own types are
//! 0.2's; what a 0.1 component says is converted up in `compat`. 0.3 adds only an import
//! (`crypto`), and its `types` are 0.2's word for word, so they are 0.2's Rust types
//! (wasmtime checks a value's shape by its fields and cases, not by the package that named
//! them): a 0.3 component's exports need no conversion.

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

/// `gov:adapter@0.3.0`: the `crypto` import, keys the host holds.
pub(crate) mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.3.0",
        world: "adapter",
        imports: { default: async },
        exports: { default: async },
        with: {
            "gov:adapter/types@0.3.0": super::v0_2::gov::adapter::types,
        },
    });
}
