//! The materials (申请材料) of the call in progress: what they are, and their bytes in slices.
//!
//! A call that carries materials hands them to the adapter ([`Submission::materials`],
//! [`Supplement::materials`]): each with its code, name and source — an uploaded file
//! ([`FileInfo`]: media type, size, SM3), a licence the gateway holds, or one promised for
//! later. A file's bytes stay in the host. To send them to the department, put a
//! [`Slice`] of them into a request body ([`http::Body`]): the host streams it, and the adapter
//! never holds it. To look at them (a digest of a chunk, a header to sniff), read them here, at
//! most [`READ_MAX`] bytes at a time: only the materials of the call in progress can be read.
//!
//! ```no_run
//! use sdk::materials::{self, Reader};
//! # fn f(submission: sdk::Submission) -> Result<(), sdk::AdapterError> {
//! for material in &submission.materials {
//!     let Some(file) = material.file() else { continue };
//!     // The first bytes, say to check a PDF's header.
//!     let head = materials::read(&material.code, 0, 8)?;
//!     // The SM3 of the first 4 MiB, read through in slices.
//!     let first = materials::sm3_hex(&material.code, 0, Some(4 << 20))?;
//!     // Every byte, one slice at a time.
//!     for slice in Reader::new(&material.code) {
//!         let bytes = slice?;
//!         # let _ = bytes;
//!     }
//!     # let _ = (head, first, file);
//! }
//! # Ok(()) }
//! ```
//!
//! [`Submission::materials`]: crate::Submission::materials
//! [`Supplement::materials`]: crate::Supplement::materials
//! [`FileInfo`]: crate::FileInfo
//! [`http::Body`]: crate::http::Body
//! [`Slice`]: crate::http::Slice

// Natively (unit tests) the import is a stub that cannot run: the test harness answers instead.
#[cfg(not(target_arch = "wasm32"))]
use super::testing::double::materials as imp;
#[cfg(target_arch = "wasm32")]
use super::wit::gov::adapter::materials as imp;
pub use super::wit::gov::adapter::materials::ReadError;
use crate::AdapterError;
use crate::http::Slice;

/// The most one [`read`] answers: the host's bound.
pub const READ_MAX: u32 = 1 << 20;

/// Up to `max` bytes (at most [`READ_MAX`]) of material `code` from `offset`; empty past its end.
pub fn read(code: &str, offset: u64, max: u32) -> Result<Vec<u8>, ReadError> {
    imp::read(code, offset, max.min(READ_MAX))
}

/// A material's bytes, in slices of up to [`READ_MAX`] (or [`Reader::slice_size`]): an iterator
/// of slices, and a [`std::io::Read`].
#[derive(Debug, Clone)]
pub struct Reader {
    code: String,
    next: u64,
    /// Where to stop; none: at the material's end.
    end: Option<u64>,
    slice: u32,
    done: bool,
}

impl Reader {
    /// All of material `code`.
    pub fn new(code: &str) -> Self {
        Reader {
            code: code.to_string(),
            next: 0,
            end: None,
            slice: READ_MAX,
            done: false,
        }
    }

    /// `length` bytes of material `code` from `offset` (none: to its end).
    pub fn range(code: &str, offset: u64, length: Option<u64>) -> Self {
        Reader {
            code: code.to_string(),
            next: offset,
            end: length.map(|l| offset.saturating_add(l)),
            slice: READ_MAX,
            done: length == Some(0),
        }
    }

    /// Read at most `bytes` at a time (at most [`READ_MAX`]; at least 1).
    pub fn slice_size(mut self, bytes: u32) -> Self {
        self.slice = bytes.clamp(1, READ_MAX);
        self
    }

    /// The next slice; `None` at the end.
    pub fn next_slice(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        self.next_up_to(self.slice)
    }

    fn next_up_to(&mut self, max: u32) -> Result<Option<Vec<u8>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let mut max = max.min(self.slice);
        if let Some(end) = self.end {
            max = max.min(end.saturating_sub(self.next).min(u64::from(u32::MAX)) as u32);
        }
        let bytes = if max == 0 {
            Vec::new()
        } else {
            read(&self.code, self.next, max)?
        };
        if bytes.is_empty() {
            self.done = true;
            return Ok(None);
        }
        self.next += bytes.len() as u64;
        if self.end.is_some_and(|end| self.next >= end) {
            self.done = true;
        }
        Ok(Some(bytes))
    }
}

impl Iterator for Reader {
    type Item = Result<Vec<u8>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_slice() {
            Ok(Some(bytes)) => Some(Ok(bytes)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::io::Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len().min(READ_MAX as usize) as u32;
        match self.next_up_to(max) {
            Ok(Some(bytes)) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Ok(None) => Ok(0),
            Err(e) => Err(std::io::Error::other(format!("{e:?}"))),
        }
    }
}

/// Hex SM3 of `length` bytes of material `code` from `offset` (none: to its end), read through
/// in slices (what a chunked upload sends with each chunk). The whole file's SM3 is in its
/// [`FileInfo`](crate::FileInfo) already.
pub fn sm3_hex(code: &str, offset: u64, length: Option<u64>) -> Result<String, AdapterError> {
    use sm3::Digest as _;
    let mut hash = sm3::Sm3::new();
    for slice in Reader::range(code, offset, length) {
        hash.update(slice?);
    }
    Ok(hex::encode(hash.finalize()))
}

/// One chunk of a chunked upload: its number (from 0), where it starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// 0, 1, 2 …
    pub index: u64,
    /// Its first byte in the file.
    pub offset: u64,
    /// Its bytes (the last chunk may be shorter).
    pub length: u64,
}

impl Chunk {
    /// The chunk of material `code` as a raw body part.
    pub fn slice(&self, code: &str) -> Slice {
        Slice::new(code, self.offset, self.length)
    }

    /// Hex SM3 of the chunk, read through.
    pub fn sm3_hex(&self, code: &str) -> Result<String, AdapterError> {
        sm3_hex(code, self.offset, Some(self.length))
    }
}

/// A file of `size` bytes cut into chunks of `chunk_size` (an empty file is one empty chunk,
/// as uploads in chunks count it).
pub fn chunks(size: u64, chunk_size: u64) -> Vec<Chunk> {
    let chunk_size = chunk_size.max(1);
    if size == 0 {
        return vec![Chunk {
            index: 0,
            offset: 0,
            length: 0,
        }];
    }
    (0..size.div_ceil(chunk_size))
        .map(|index| {
            let offset = index * chunk_size;
            Chunk {
                index,
                offset,
                length: chunk_size.min(size - offset),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_file_once() {
        let c = chunks(10, 4);
        assert_eq!(
            c.iter().map(|c| (c.offset, c.length)).collect::<Vec<_>>(),
            vec![(0, 4), (4, 4), (8, 2)]
        );
        assert_eq!(chunks(8, 4).len(), 2);
        assert_eq!(chunks(0, 4)[0].length, 0);
    }
}
