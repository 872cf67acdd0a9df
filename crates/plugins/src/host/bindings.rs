//! Host bindings generated from `wit/adapter.wit`, the one source shared with the sdk.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "adapter",
    imports: { default: async },
    exports: { default: async },
});
