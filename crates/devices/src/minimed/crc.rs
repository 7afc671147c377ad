//! The two checksums of the MiniMed link: CRC16-CCITT over a 1024-byte history or CGM page,
//! and CRC8 over the CareLink stick / radio packets.

/// Bytes in a page as read from the pump: 1022 data bytes, then the CRC16 big-endian.
pub const PAGE_LEN: usize = 1024;
/// Data bytes in a page (what the CRC covers).
pub const PAGE_DATA_LEN: usize = PAGE_LEN - 2;

/// CRC16-CCITT (polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR), as the
/// pump appends it to every history and glucose page (decocare `lib.CRC16CCITT`, MinimedKit
/// `computeCRC16`).
pub fn crc16_ccitt(data: &[u8]) -> u16 {
    data.iter().fold(0xFFFF_u16, |crc, &b| {
        let i = ((crc >> 8) as u8 ^ b) as usize;
        (crc << 8) ^ CRC16_TABLE[i]
    })
}

/// CRC8 (polynomial 0x9B, initial value 0, no reflection), as the CareLink stick and the pump's
/// radio packets carry it (decocare `lib.CRC8`, MinimedKit `computeCRC8`).
pub fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |crc, &b| CRC8_TABLE[(crc ^ b) as usize])
}

/// The CRC16 stored in a page's last two bytes (big-endian), or `None` when the slice is too
/// short to hold one.
pub fn stored_crc16(page: &[u8]) -> Option<u16> {
    let n = page.len();
    (n >= 2).then(|| u16::from_be_bytes([page[n - 2], page[n - 1]]))
}

const CRC16_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000 != 0 { (c << 1) ^ 0x1021 } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

const CRC8_TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x80 != 0 { (c << 1) ^ 0x9B } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise16(data: &[u8]) -> u16 {
        let mut crc = 0xFFFF_u16;
        for &b in data {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc
    }

    #[test]
    fn crc16_matches_the_standard_check_value_and_the_bitwise_form() {
        // CRC-16/CCITT-FALSE check value.
        assert_eq!(crc16_ccitt(b"123456789"), 0x29B1);
        let data: Vec<u8> = (0..=255u8).cycle().take(1022).collect();
        assert_eq!(crc16_ccitt(&data), bitwise16(&data));
        assert_eq!(crc16_ccitt(&[]), 0xFFFF);
    }

    #[test]
    fn crc8_matches_minimedkit() {
        // MinimedKitTests/CRC8Tests.swift.
        let hex = "a259705504a24117043a0e080b003d3d00015b030105d817790a0f00000300008b1702000e080b0000";
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect();
        assert_eq!(crc8(&bytes), 0x71);
        assert_eq!(crc8(&[]), 0);
    }

    #[test]
    fn stored_crc_is_big_endian() {
        assert_eq!(stored_crc16(&[1, 2, 0x80, 0x3a]), Some(0x803a));
        assert_eq!(stored_crc16(&[1]), None);
    }
}
