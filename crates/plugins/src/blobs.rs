//! Where materials' bytes come from: the node's store, or a test's own source. Both the host
//! (`materials.read`) and the department connection (material slices streamed into a request)
//! read through [`MaterialBlobs`], so neither depends on the other for it.

use std::future::Future;
use std::pin::Pin;

/// A future the store answers with.
pub type BlobRead<'a> = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, String>> + Send + 'a>>;

/// Where materials' bytes are read from: the node's store ([`gateway_store::Store`]), or a
/// test's own source.
pub trait MaterialBlobs: Send + Sync + 'static {
    /// Bytes `offset .. offset + max` of the stored file with this SM3 (fewer at its end, none
    /// past it); `None` when no file has this digest; `Err` when the store failed.
    fn read<'a>(&'a self, sm3: &'a str, offset: u64, max: usize) -> BlobRead<'a>;
}

impl MaterialBlobs for gateway_store::Store {
    fn read<'a>(&'a self, sm3: &'a str, offset: u64, max: usize) -> BlobRead<'a> {
        Box::pin(async move {
            self.read_blob(sm3, offset, max)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
