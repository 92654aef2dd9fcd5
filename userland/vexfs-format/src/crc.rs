// SPDX-License-Identifier: GPL-2.0

//! CRC-32C (Castagnoli), the checksum of every VexFS metadata structure:
//! the one ext4, btrfs and XFS use, with the usual initial value and final
//! inversion, so `crc32c(b"123456789") == 0xe306_9283`.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82f6_3b78;

/// Slice-by-8 tables, built at compile time.
const TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

/// Continues a CRC-32C over `data`: `crc32c_update(crc32c_update(!0, a), b)`
/// equals the raw state over `a ++ b`. Start with `!0` and finish with `!`,
/// or use [`crc32c`].
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xff) as usize]
            ^ TABLES[2][((hi >> 8) & 0xff) as usize]
            ^ TABLES[1][((hi >> 16) & 0xff) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// The CRC-32C of `data` with the 4 bytes at `at` (a structure's own
/// checksum field) taken as zero.
pub fn crc32c_skipping(data: &[u8], at: usize) -> u32 {
    let crc = crc32c_update(!0, &data[..at]);
    let crc = crc32c_update(crc, &[0; 4]);
    !crc32c_update(crc, &data[at + 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    }

    #[test]
    fn slice_by_8_matches_bitwise() {
        let data: [u8; 259] = core::array::from_fn(|i| (i as u8).wrapping_mul(167) ^ 0x5a);
        for start in 0..9 {
            for end in (start..data.len()).step_by(7) {
                assert_eq!(crc32c(&data[start..end]), bitwise(&data[start..end]));
            }
        }
    }

    #[test]
    fn skipping_is_zeroed_field() {
        let mut data = [7u8; 40];
        data[12..16].copy_from_slice(&[1, 2, 3, 4]);
        let skipped = crc32c_skipping(&data, 12);
        data[12..16].fill(0);
        assert_eq!(skipped, crc32c(&data));
    }
}
