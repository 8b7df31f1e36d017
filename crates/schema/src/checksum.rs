//! The checksum recorded for each applied migration.

/// FNV-1a (64-bit) of the SQL, as 16 lowercase hex digits.
///
/// Carriage returns are skipped so a checkout with CRLF line endings does not look like an edit.
/// Not cryptographic: it detects accidental edits of released migrations, not tampering.
pub fn checksum(sql: &str) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = sql
        .bytes()
        .filter(|&byte| byte != b'\r')
        .fold(OFFSET_BASIS, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_64_vectors() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
        assert_eq!(checksum("foobar"), "85944171f73967e8");
    }

    #[test]
    fn ignores_carriage_returns_only() {
        assert_eq!(checksum("a\r\nb\r\n"), checksum("a\nb\n"));
        assert_ne!(checksum("a\nb\n"), checksum("a\nb \n"));
    }
}
