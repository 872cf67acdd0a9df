//! Material files for the tests, made the way their formats say: the gateway decides a file's
//! type from its content, so each starts and ends as its format does, with noise between.

/// Bytes that are not a pattern a bug could hide in (xorshift from `seed`).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15 ^ seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A PDF of exactly `len` bytes (at least 16).
pub fn pdf(len: usize, seed: u64) -> Vec<u8> {
    let (head, tail) = (&b"%PDF-1.7\n"[..], &b"\n%%EOF\n"[..]);
    [head, &noise(len - head.len() - tail.len(), seed), tail].concat()
}

/// A JPEG: start and end markers around `len` bytes of noise.
pub fn jpeg(len: usize, seed: u64) -> Vec<u8> {
    [
        &[0xFF, 0xD8, 0xFF, 0xE0][..],
        &noise(len, seed),
        &[0xFF, 0xD9],
    ]
    .concat()
}

/// A PNG: signature and IEND around `len` bytes of noise.
pub fn png(len: usize, seed: u64) -> Vec<u8> {
    let end = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    [
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A][..],
        &noise(len, seed),
        &end,
    ]
    .concat()
}

/// An OFD (GB/T 33190): a ZIP of stored entries whose central directory lists `OFD.xml`, and a
/// document of `len` bytes of noise.
pub fn ofd(len: usize, seed: u64) -> Vec<u8> {
    let entries: [(&str, Vec<u8>); 2] = [
        (
            "OFD.xml",
            b"<ofd:OFD xmlns:ofd=\"http://www.ofdspec.org/2016\" Version=\"1.0\"/>".to_vec(),
        ),
        ("Doc_0/Document.xml", noise(len, seed)),
    ];
    let (mut out, mut dir) = (Vec::new(), Vec::new());
    for (name, data) in &entries {
        let offset = out.len() as u32;
        let fields = |v: &mut Vec<u8>| {
            v.extend_from_slice(&[0; 8]); // flags, method (stored), time, date
            v.extend_from_slice(&[0; 4]); // crc
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(b"PK\x03\x04\x14\x00");
        fields(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        dir.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00");
        fields(&mut dir);
        dir.extend_from_slice(&[0; 10]);
        dir.extend_from_slice(&offset.to_le_bytes());
        dir.extend_from_slice(name.as_bytes());
    }
    let dir_at = out.len() as u32;
    out.extend_from_slice(&dir);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(dir.len() as u32).to_le_bytes());
    out.extend_from_slice(&dir_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Lowercase hex SM3 of `bytes`, as the gateway and the departments report it.
pub fn sm3_hex(bytes: &[u8]) -> String {
    sdk::sign::sm3_hex(bytes)
}

/// The materials department `d` recorded under `request_id` (a supplement's): code, kind, SM3,
/// size.
pub fn delivered(
    d: &departments::Department,
    request_id: &str,
) -> Vec<(String, String, Option<String>, Option<u64>)> {
    d.stats()
        .materials
        .into_iter()
        .filter(|m| m.request_id == request_id)
        .map(|m| (m.code, m.kind, m.sm3, m.size))
        .collect()
}

/// A file as a department records it.
pub fn file(code: &str, bytes: &[u8]) -> (String, String, Option<String>, Option<u64>) {
    (
        code.into(),
        "file".into(),
        Some(sm3_hex(bytes)),
        Some(bytes.len() as u64),
    )
}
