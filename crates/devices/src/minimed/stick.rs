//! The Medtronic CareLink USB stick (MMT-7305NA, USB `0a21:8001`, "ComLink II"): the bytes the
//! host writes to its bulk OUT endpoint and the replies it reads from bulk IN, plus the MiniMed
//! radio packet the stick relays to the pump. Pure encoding and parsing; [`super::driver`]
//! sequences them.
//!
//! Layouts follow openaps/decocare `decocare/stick.py` (the stick commands and their replies),
//! `decocare/commands.py` (`PumpCommand.format`, the transmit packet) and `decocare/lib.py`
//! (CRC8, the radio packet examples), checked against the USB captures of a real stick in
//! bewest/decoding-carelink's logs (ProductInfo, interface statistics, LinkStatus and ReadRadio
//! replies; see the unit tests, which replay them byte for byte).
//!
//! # Stick commands (host → stick)
//!
//! Three bytes `[opcode, arg, 0x00]` (decocare `StickCommand.format_cl2`):
//!
//! | opcode | command | reply body |
//! |---|---|---|
//! | `0x03` | LinkStatus: how many bytes wait in the radio buffer | [`LinkStatus`] |
//! | `0x04` | ProductInfo | [`ProductInfo`] |
//! | `0x05` | InterfaceStats (arg `0x00` radio, `0x01` USB) | [`InterfaceStats`] |
//! | `0x06` | SignalStrength | one byte, the radio signal strength (decocare waits for ≥ 50) |
//!
//! plus the two radio commands: ReadRadio `[0x0C, 0x00, size_hi, size_lo, crc8]` (download
//! `size` bytes of the radio buffer; `size` is what LinkStatus reported) and TransmitPacket
//! ([`TransmitPacket`]).
//!
//! # Stick replies (stick → host)
//!
//! Stick commands and TransmitPacket are answered in one 64-byte USB packet:
//! `[0x01, 0x55 'U' (ACK) | 0x66 'f' (NAK), 0x00, body…]` (decocare `StickCommand.respond`:
//! byte 0 must be 1, byte 1 `U`, the body starts at byte 3). What follows the body is whatever
//! the stick's buffer held before (the captures show stale bytes), so bodies are read by offset.
//!
//! ReadRadio is answered with `14 + n` bytes, several USB packets when `n > 50`:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | `0x02` (decocare `ReadRadio.respond` refuses anything else) |
//! | 1 | interface (0) |
//! | 2 | status: 2 = the pump NAKed, 5 = the radio timed out (decocare comments); 1 and 3 seen on good replies |
//! | 3 | retries the stick needed |
//! | 4 | unknown (0xc4, 0xcd in the captures; a signal level?) |
//! | 5 | bit 7: end of data (`eod`); bits 0–6: high bits of `n` |
//! | 6 | low byte of `n` |
//! | 7–11 | `0xA7 0x01` and the pump serial (as in the transmit packet's head) |
//! | 12 | CRC8 of bytes 0–11 (found by checking both captured replies; decocare does not read it) |
//! | 13… | `n` data bytes: the pump's reply body without its first byte (see below) |
//! | 13+n | CRC8 of the `n` data bytes (decocare `ReadRadio.parse`) |
//!
//! A pump answer longer than one radio frame (a 1024-byte history page is 16 frames of 64
//! bytes) arrives in several ReadRadio chunks, each holding one or more 64-byte frames; the last
//! has `eod` set (decocare `Stick.download`, and the logs' 78-, 142- and 206-byte downloads).
//!
//! # The pump's radio packet
//!
//! On the air a pump message is `[0xA7, serial(3), command, body…, crc8]` ([`PumpPacket`]); an
//! answer body is 65 bytes, a first byte (a length or frame number; `0x09` for the model answer
//! in decocare's `lib.py` example) and 64 data bytes. The stick hands the host only the 64 data
//! bytes: the model answer arrives as `[0x03, '5', '1', '5', 0…]` in the capture, where the air
//! packet reads `[0x09, 0x03, '7', '2', '2', …]`. Those 64-byte payloads are what
//! [`super::pump`] decodes and what a [`super::dump::PumpDump`] stores.

use super::crc::crc8;
use std::fmt;
use std::str::FromStr;

/// USB vendor id of the CareLink USB stick.
pub const USB_VENDOR_ID: u16 = 0x0A21;
/// USB product id of the CareLink USB stick.
pub const USB_PRODUCT_ID: u16 = 0x8001;
/// Largest bulk IN transfer the stick sends at once.
pub const USB_PACKET: usize = 64;

/// Stick opcodes (byte 0 of what the host writes).
pub mod op {
    pub const TRANSMIT_PACKET: u8 = 0x01;
    pub const LINK_STATUS: u8 = 0x03;
    pub const PRODUCT_INFO: u8 = 0x04;
    pub const INTERFACE_STATS: u8 = 0x05;
    pub const SIGNAL_STRENGTH: u8 = 0x06;
    pub const READ_RADIO: u8 = 0x0C;
}

/// Byte 0 of a reply to a stick command or a TransmitPacket.
pub const REPLY_COMMAND: u8 = 0x01;
/// Byte 0 of a ReadRadio reply.
pub const REPLY_RADIO: u8 = 0x02;
/// Byte 1 of a stick reply: the stick accepted the command (`'U'`).
pub const ACK: u8 = 0x55;
/// Byte 1 of a stick reply: the stick refused the command (`'f'`).
pub const NAK: u8 = 0x66;
/// Length of a ReadRadio reply's header (the data starts here).
pub const RADIO_HEADER: usize = 13;
/// ReadRadio reply bytes around the data: the 13-byte header and the data CRC8.
pub const RADIO_OVERHEAD: usize = RADIO_HEADER + 1;
/// Packet type of MiniMed pump radio messages.
pub const PUMP_PACKET_TYPE: u8 = 0xA7;
/// ReadRadio status byte: the pump NAKed the command (decocare `stick.py` comment).
pub const RADIO_STATUS_NAK: u8 = 0x02;
/// ReadRadio status byte: the radio timed out waiting for the pump (decocare comment).
pub const RADIO_STATUS_TIMEOUT: u8 = 0x05;

/// What is wrong with bytes the stick sent, or with bytes given to an encoder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StickError {
    #[error("the stick sent nothing")]
    Empty,
    #[error("the stick's reply is {len} bytes, at least {needed} were expected")]
    Short { len: usize, needed: usize },
    #[error("the stick's reply starts with {found:#04x}, expected {expected:#04x}")]
    Unexpected { expected: u8, found: u8 },
    #[error("the stick refused the command (NAK)")]
    Nak,
    #[error("the stick's status byte is {0:#04x} instead of ACK (0x55)")]
    Status(u8),
    #[error("LinkStatus reports error {0:#04x}")]
    LinkError(u8),
    #[error("radio data CRC mismatch: the stick says {stored:#04x}, the {len} data bytes give {computed:#04x}")]
    BadCrc { stored: u8, computed: u8, len: usize },
    #[error("a pump serial number is 6 hex digits (the SN on the back of the pump), not {0:?}")]
    BadSerial(String),
    #[error("a transmit packet is at least 16 bytes with head 01 00 a7 01; these {0} bytes are not one")]
    NotATransmitPacket(usize),
    #[error("transmit packet CRC mismatch ({0})")]
    TransmitCrc(&'static str),
    #[error("a pump packet starts with 0xa7 and ends with its CRC8; these {0} bytes are not one")]
    NotAPumpPacket(usize),
    #[error("{0} parameter bytes do not fit in one transmit packet")]
    TooManyParams(usize),
}

/// A pump's radio address: the 6 digits of its serial number read as 3 hex bytes (decocare
/// `serial.decode('hex')`: "208850" → `20 88 50`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PumpSerial(pub [u8; 3]);

impl FromStr for PumpSerial {
    type Err = StickError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() != 6 || !b.iter().all(u8::is_ascii_hexdigit) {
            return Err(StickError::BadSerial(s.to_string()));
        }
        let nib = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let mut out = [0u8; 3];
        for (i, o) in out.iter_mut().enumerate() {
            match (nib(b[2 * i]), nib(b[2 * i + 1])) {
                (Some(h), Some(l)) => *o = (h << 4) | l,
                _ => return Err(StickError::BadSerial(s.to_string())),
            }
        }
        Ok(PumpSerial(out))
    }
}

impl fmt::Display for PumpSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", super::hex(&self.0))
    }
}

/// A 3-byte stick command (`[opcode, arg, 0]`).
pub fn stick_command(opcode: u8, arg: u8) -> Vec<u8> {
    vec![opcode, arg, 0x00]
}

/// LinkStatus (`03 00 00`).
pub fn link_status() -> Vec<u8> {
    stick_command(op::LINK_STATUS, 0)
}

/// ProductInfo (`04 00 00`).
pub fn product_info() -> Vec<u8> {
    stick_command(op::PRODUCT_INFO, 0)
}

/// Which side of the stick [`interface_stats`] reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// decocare `RadioStats` (`05 00 00`).
    Radio = 0,
    /// decocare `UsbStats` (`05 01 00`).
    Usb = 1,
}

/// InterfaceStats (`05 00 00` radio, `05 01 00` USB).
pub fn interface_stats(side: Interface) -> Vec<u8> {
    stick_command(op::INTERFACE_STATS, side as u8)
}

/// SignalStrength (`06 00 00`).
pub fn signal_strength() -> Vec<u8> {
    stick_command(op::SIGNAL_STRENGTH, 0)
}

/// ReadRadio: download `size` bytes (as LinkStatus reported them) of the radio buffer:
/// `[0x0C, 0x00, size_hi, size_lo, crc8 of the four]` (decocare `ReadRadio.__init__`).
pub fn read_radio(size: u16) -> Vec<u8> {
    let [hi, lo] = size.to_be_bytes();
    let mut v = vec![op::READ_RADIO, 0x00, hi, lo];
    v.push(crc8(&v));
    v
}

/// A pump command as the stick transmits it (decocare `PumpCommand.format`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransmitPacket {
    pub serial: PumpSerial,
    /// The pump command code (0x8D ReadPumpModel, …).
    pub code: u8,
    pub params: Vec<u8>,
    /// Button byte: 0x55 for PowerControl (0x5D), 0 otherwise (decocare: "not sure what this
    /// byte means").
    pub button: u8,
    /// Radio retries the stick may make (decocare: 2 for reads, 0 for PowerControl).
    pub retries: u8,
    /// Frames expected back: 0 none, 1 one, 2 more than one (decocare caps at 2).
    pub pages: u8,
}

impl TransmitPacket {
    /// The packet for `code` with decocare's defaults: button 0x55 and 0 retries for
    /// PowerControl, 2 retries otherwise; `pages` from the answer's size in bytes.
    pub fn new(serial: PumpSerial, code: u8, params: Vec<u8>, answer_bytes: usize) -> Self {
        let power = code == super::pump::code::POWER_CONTROL;
        TransmitPacket {
            serial,
            code,
            params,
            button: if power { 0x55 } else { 0 },
            retries: if power { 0 } else { 2 },
            pages: match answer_bytes.div_ceil(64) {
                0 => 0,
                1 => 1,
                _ => 2,
            },
        }
    }

    /// The bytes to write: `01 00 a7 01`, serial, `0x80 | params_hi`, `params_lo`, button,
    /// retries, pages, `00`, code, CRC8 of all that, params, CRC8 of the params.
    pub fn encode(&self) -> Result<Vec<u8>, StickError> {
        let n = u16::try_from(self.params.len())
            .ok()
            .filter(|&n| n < 0x80 << 8)
            .ok_or(StickError::TooManyParams(self.params.len()))?;
        let [hi, lo] = n.to_be_bytes();
        let mut p = vec![op::TRANSMIT_PACKET, 0x00, PUMP_PACKET_TYPE, 0x01];
        p.extend_from_slice(&self.serial.0);
        p.extend_from_slice(&[0x80 | hi, lo, self.button, self.retries, self.pages, 0x00]);
        p.push(self.code);
        p.push(crc8(&p));
        p.extend_from_slice(&self.params);
        p.push(crc8(&self.params));
        Ok(p)
    }

    /// Parses a transmit packet (the simulator's side), checking both CRCs.
    pub fn decode(b: &[u8]) -> Result<Self, StickError> {
        if b.len() < 16 || b[..4] != [op::TRANSMIT_PACKET, 0x00, PUMP_PACKET_TYPE, 0x01] {
            return Err(StickError::NotATransmitPacket(b.len()));
        }
        if crc8(&b[..14]) != b[14] {
            return Err(StickError::TransmitCrc("head"));
        }
        let n = usize::from(u16::from_be_bytes([b[7] & 0x7F, b[8]]));
        let params = b.get(15..15 + n).ok_or(StickError::NotATransmitPacket(b.len()))?;
        if b.get(15 + n) != Some(&crc8(params)) {
            return Err(StickError::TransmitCrc("parameters"));
        }
        Ok(TransmitPacket {
            serial: PumpSerial([b[4], b[5], b[6]]),
            code: b[13],
            params: params.to_vec(),
            button: b[9],
            retries: b[10],
            pages: b[11],
        })
    }
}

/// The body of a reply to a stick command or a TransmitPacket (the bytes after
/// `01 55 00`), or why the reply is not an ACK.
pub fn parse_stick_reply(raw: &[u8]) -> Result<&[u8], StickError> {
    let first = *raw.first().ok_or(StickError::Empty)?;
    if first != REPLY_COMMAND {
        return Err(StickError::Unexpected { expected: REPLY_COMMAND, found: first });
    }
    match raw.get(1) {
        None => Err(StickError::Short { len: raw.len(), needed: 3 }),
        Some(&ACK) => raw.get(3..).ok_or(StickError::Short { len: raw.len(), needed: 3 }),
        Some(&NAK) => Err(StickError::Nak),
        Some(&other) => Err(StickError::Status(other)),
    }
}

/// A stick reply as the stick sends it: `01 55 00`, the body, zeros to 64 bytes (the
/// simulator's side; a real stick leaves stale bytes after the body).
pub fn encode_stick_reply(body: &[u8]) -> Vec<u8> {
    let mut v = vec![REPLY_COMMAND, ACK, 0x00];
    v.extend_from_slice(body);
    v.resize(v.len().max(USB_PACKET), 0);
    v
}

/// A stick NAK (`01 66 00`, zeros to 64 bytes).
pub fn encode_stick_nak() -> Vec<u8> {
    let mut v = vec![REPLY_COMMAND, NAK, 0x00];
    v.resize(USB_PACKET, 0);
    v
}

/// The ProductInfo body (decocare `ProductInfo.decode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductInfo {
    /// The stick's own serial, in hex.
    pub serial: String,
    pub product_version: String,
    /// "916.5MHz" (US) or "868.35MHz" (world), from byte 5.
    pub rf_frequency: &'static str,
    /// "ComLink II".
    pub description: String,
    pub software_version: String,
    /// (index, name) of the stick's interfaces: "Paradigm RF", "USB".
    pub interfaces: Vec<(u8, &'static str)>,
}

impl ProductInfo {
    pub fn decode(body: &[u8]) -> Result<Self, StickError> {
        if body.len() < 19 {
            return Err(StickError::Short { len: body.len(), needed: 19 });
        }
        let rf_frequency = match body[5] {
            0 | 255 => "916.5MHz",
            1 => "868.35MHz",
            _ => "unknown",
        };
        let description: String = body[6..16]
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| if c.is_ascii_graphic() || c == b' ' { char::from(c) } else { '.' })
            .collect();
        let n = usize::from(body[18]);
        let interfaces = body[19..]
            .chunks_exact(2)
            .take(n)
            .map(|kv| {
                let name = match kv[1] {
                    1 => "Paradigm RF",
                    3 => "USB",
                    _ => "unknown",
                };
                (kv[0], name)
            })
            .collect();
        Ok(ProductInfo {
            serial: super::hex(&body[0..3]),
            product_version: format!("{}.{}", body[3], body[4]),
            rf_frequency,
            description,
            software_version: format!("{}.{}", body[16], body[17]),
            interfaces,
        })
    }
}

/// Interface statistics (decocare `InterfaceStats.decode`): six counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    pub crc_errors: u8,
    pub sequence_errors: u8,
    pub naks: u8,
    pub timeouts: u8,
    pub received: u32,
    pub transmitted: u32,
}

impl InterfaceStats {
    pub fn decode(body: &[u8]) -> Result<Self, StickError> {
        let b = body.get(..12).ok_or(StickError::Short { len: body.len(), needed: 12 })?;
        Ok(InterfaceStats {
            crc_errors: b[0],
            sequence_errors: b[1],
            naks: b[2],
            timeouts: b[3],
            received: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            transmitted: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.crc_errors, self.sequence_errors, self.naks, self.timeouts];
        v.extend_from_slice(&self.received.to_be_bytes());
        v.extend_from_slice(&self.transmitted.to_be_bytes());
        v
    }
}

/// The signal strength in a SignalStrength body (decocare `SignalStrength.parse`: byte 0).
pub fn decode_signal_strength(body: &[u8]) -> Result<u8, StickError> {
    body.first().copied().ok_or(StickError::Short { len: 0, needed: 1 })
}

/// A LinkStatus body (decocare `LinkStatus.record_error`): byte 0 is 0 on success, byte 2 the
/// radio status bits, bytes 3–4 the size (big-endian) of what waits in the radio buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    pub status: u8,
    /// Bytes a ReadRadio can download now: `14 + data` (78 for one 64-byte frame), or 0 when
    /// the status's ready bit (0x01) is clear.
    pub size: u16,
}

impl LinkStatus {
    /// Status bit: data ready (decocare's "STATUS: OK").
    pub const READY: u8 = 0x01;
    /// Status bit: the radio is receiving.
    pub const RECEIVING: u8 = 0x02;
    /// Status bit: the radio is transmitting.
    pub const TRANSMITTING: u8 = 0x04;

    pub fn decode(body: &[u8]) -> Result<Self, StickError> {
        let b = body.get(..5).ok_or(StickError::Short { len: body.len(), needed: 5 })?;
        if b[0] != 0 {
            return Err(StickError::LinkError(b[0]));
        }
        let size = u16::from_be_bytes([b[3], b[4]]);
        Ok(LinkStatus { status: b[2], size: if b[2] & Self::READY != 0 { size } else { 0 } })
    }

    /// The body as the stick sends it. Byte 1 (0x02) and bytes 5–6 (`05 04`) are copied from
    /// the captures; nobody knows what they mean.
    pub fn encode(&self) -> Vec<u8> {
        let [hi, lo] = self.size.to_be_bytes();
        vec![0x00, 0x02, self.status, hi, lo, 0x05, 0x04]
    }
}

/// A parsed ReadRadio reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RadioReply {
    /// Byte 2: [`RADIO_STATUS_NAK`], [`RADIO_STATUS_TIMEOUT`], or 1/3 on good replies.
    pub status: u8,
    /// Byte 3: radio retries the stick made.
    pub retries: u8,
    /// End of data: the last chunk of the pump's answer.
    pub eod: bool,
    /// The pump's answer bytes in this chunk (one or more 64-byte frames, or a short ack).
    pub data: Vec<u8>,
    /// Whether byte 12 is the CRC8 of bytes 0–11. Not enforced (decocare never reads it, and
    /// only two captures back the reading); exposed for diagnostics.
    pub header_crc_ok: bool,
}

/// The number of bytes a ReadRadio reply announces (`14 + n`), from its first 7 bytes.
pub fn radio_reply_len(head: &[u8]) -> Option<usize> {
    let b5 = *head.get(5)?;
    let b6 = *head.get(6)?;
    Some(RADIO_OVERHEAD + usize::from(u16::from_be_bytes([b5 & 0x7F, b6])))
}

/// Parses a ReadRadio reply and checks the data CRC8 (decocare `ReadRadio.respond` and
/// `ReadRadio.parse`).
pub fn parse_radio_reply(raw: &[u8]) -> Result<RadioReply, StickError> {
    let first = *raw.first().ok_or(StickError::Empty)?;
    if first != REPLY_RADIO {
        return Err(StickError::Unexpected { expected: REPLY_RADIO, found: first });
    }
    let total = radio_reply_len(raw).ok_or(StickError::Short { len: raw.len(), needed: RADIO_OVERHEAD })?;
    if raw.len() < total {
        return Err(StickError::Short { len: raw.len(), needed: total });
    }
    let data = &raw[RADIO_HEADER..total - 1];
    let stored = raw[total - 1];
    let computed = crc8(data);
    if stored != computed {
        return Err(StickError::BadCrc { stored, computed, len: data.len() });
    }
    Ok(RadioReply {
        status: raw[2],
        retries: raw[3],
        eod: raw[5] & 0x80 != 0,
        data: data.to_vec(),
        header_crc_ok: crc8(&raw[..12]) == raw[12],
    })
}

/// A ReadRadio reply as the stick sends it (the simulator's side). `status` as in
/// [`RadioReply::status`]; `corrupt` flips the data CRC (a radio error the stick passed on).
pub fn encode_radio_reply(serial: PumpSerial, status: u8, eod: bool, data: &[u8], corrupt: bool) -> Vec<u8> {
    let n = u16::try_from(data.len()).unwrap_or(0x7FFF).min(0x7FFF);
    let [hi, lo] = n.to_be_bytes();
    // Byte 4 copied from the captures (0xc4 on a 64-byte reply).
    let mut v =
        vec![REPLY_RADIO, 0x00, status, 0x00, 0xC4, hi | if eod { 0x80 } else { 0 }, lo, PUMP_PACKET_TYPE, 0x01];
    v.extend_from_slice(&serial.0);
    v.push(crc8(&v));
    let data = &data[..usize::from(n)];
    v.extend_from_slice(data);
    let c = crc8(data);
    v.push(if corrupt { c ^ 0x5A } else { c });
    v
}

/// A MiniMed radio message as it travels on the air (MinimedKit `PumpMessage`, decocare
/// `lib.py` examples): packet type 0xA7, the pump serial, the command code, the body, CRC8 of
/// everything before it. The CareLink stick builds and strips these itself; they are here to
/// check the layouts against the references' examples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PumpPacket {
    pub serial: PumpSerial,
    pub code: u8,
    pub body: Vec<u8>,
}

impl PumpPacket {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![PUMP_PACKET_TYPE];
        v.extend_from_slice(&self.serial.0);
        v.push(self.code);
        v.extend_from_slice(&self.body);
        v.push(crc8(&v));
        v
    }

    pub fn decode(b: &[u8]) -> Result<Self, StickError> {
        if b.len() < 6 || b[0] != PUMP_PACKET_TYPE {
            return Err(StickError::NotAPumpPacket(b.len()));
        }
        let (msg, crc) = b.split_at(b.len() - 1);
        let computed = crc8(msg);
        if crc[0] != computed {
            return Err(StickError::BadCrc { stored: crc[0], computed, len: msg.len() });
        }
        Ok(PumpPacket { serial: PumpSerial([b[1], b[2], b[3]]), code: b[4], body: msg[5..].to_vec() })
    }

    /// The payload the CareLink stick hands to the host: the body without its first byte.
    pub fn stick_payload(&self) -> &[u8] {
        self.body.get(1..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
    }

    fn serial(s: &str) -> PumpSerial {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The 64-byte ProductInfo reply of a real stick (bewest/decoding-carelink log), which
    /// decocare decodes to ComLink II 1.16, serial 0c1700, 916.5 MHz, RF + USB.
    #[test]
    fn product_info_matches_the_captured_stick() {
        let mut raw = unhex("01 55 00 0c 17 00 00 00 00 43 6f 6d 4c 69 6e 6b 20 49 49 01 10 02 00 01 01 03");
        raw.resize(64, 0);
        let body = parse_stick_reply(&raw).unwrap_or_else(|e| panic!("{e}"));
        let info = ProductInfo::decode(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.serial, "0c1700");
        assert_eq!(info.description, "ComLink II");
        assert_eq!(info.software_version, "1.16");
        assert_eq!(info.product_version, "0.0");
        assert_eq!(info.rf_frequency, "916.5MHz");
        assert_eq!(info.interfaces, vec![(0, "Paradigm RF"), (1, "USB")]);
    }

    #[test]
    fn interface_stats_and_signal_match_the_captures() {
        let usb = unhex("01 55 00 00 00 00 00 00 00 01 42 00 00 01 42 01 43 01 45");
        let s = InterfaceStats::decode(parse_stick_reply(&usb).unwrap_or(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.received, s.transmitted, s.crc_errors), (322, 322, 0));
        let radio = unhex("01 55 00 00 00 00 03 00 00 00 3a 00 00 00 3f 00");
        let r = InterfaceStats::decode(parse_stick_reply(&radio).unwrap_or(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.timeouts, r.received, r.transmitted), (3, 58, 63));
        assert_eq!(InterfaceStats::decode(&r.encode()), Ok(r));
        let sig = unhex("01 55 00 bc 17 00");
        assert_eq!(decode_signal_strength(parse_stick_reply(&sig).unwrap_or(&[])), Ok(188));
        assert_eq!(interface_stats(Interface::Usb), vec![5, 1, 0]);
        assert_eq!(interface_stats(Interface::Radio), vec![5, 0, 0]);
    }

    #[test]
    fn link_status_sizes_match_the_captures() {
        let raw = unhex("01 55 00 00 02 01 00 4e 05 04 00 00");
        let ls = LinkStatus::decode(parse_stick_reply(&raw).unwrap_or(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ls.size, 78);
        let raw = unhex("01 55 00 00 02 01 00 0f 05 04 00 50");
        assert_eq!(LinkStatus::decode(parse_stick_reply(&raw).unwrap_or(&[])).map(|l| l.size), Ok(15));
        // Not ready: no size.
        let body = LinkStatus { status: LinkStatus::RECEIVING, size: 78 }.encode();
        assert_eq!(LinkStatus::decode(&body).map(|l| l.size), Ok(0));
        assert_eq!(LinkStatus::decode(&[1, 0, 1, 0, 78]), Err(StickError::LinkError(1)));
    }

    #[test]
    fn read_radio_commands_match_the_captures() {
        assert_eq!(read_radio(78), unhex("0c 00 00 4e 95"));
        assert_eq!(read_radio(15), unhex("0c 00 00 0f c6"));
    }

    /// The captured 78-byte ReadRadio reply carrying a 515's model number, and the 15-byte one
    /// carrying a pump ack.
    #[test]
    fn radio_replies_match_the_captures() {
        let mut raw = unhex("02 00 03 00 c4 80 40 a7 01 20 88 50 a1 03 35 31 35");
        raw.resize(13 + 64, 0);
        let mut data = vec![0x03, b'5', b'1', b'5'];
        data.resize(64, 0);
        raw.push(crc8(&data));
        let r = parse_radio_reply(&raw).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.eod && r.header_crc_ok);
        assert_eq!(r.data, data);
        assert_eq!(r.status, 3);
        let ack = unhex("02 00 01 00 cd 80 01 a7 01 20 88 50 44 00 00");
        let a = parse_radio_reply(&ack).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.data.as_slice(), a.eod, a.header_crc_ok), (&[0u8][..], true, true));
        assert_eq!(radio_reply_len(&ack), Some(15));
        // The encoder reproduces the header layout, including the header CRC.
        let enc = encode_radio_reply(serial("208850"), 3, true, &data, false);
        assert_eq!(enc[..4], raw[..4]);
        assert_eq!(enc[5..], raw[5..]);
        let mut bad = enc.clone();
        bad[20] ^= 1;
        assert!(matches!(parse_radio_reply(&bad), Err(StickError::BadCrc { len: 64, .. })));
        assert!(matches!(
            parse_radio_reply(&encode_radio_reply(serial("208850"), 3, true, &data, true)),
            Err(StickError::BadCrc { .. })
        ));
        assert!(matches!(parse_radio_reply(&raw[..40]), Err(StickError::Short { needed: 78, .. })));
    }

    /// decocare `commands.py` doctests (`_test_ok` packets) and the captured ReadPumpModel write.
    #[test]
    fn transmit_packets_match_decocare() {
        let s = serial("665455");
        let model = TransmitPacket::new(s, 0x8D, vec![], 64).encode();
        assert_eq!(model, Ok(unhex("01 00 a7 01 66 54 55 80 00 00 02 01 00 8d 5b 00")));
        let power = TransmitPacket::new(s, 0x5D, vec![0x01, 0x0A], 0).encode();
        assert_eq!(power, Ok(unhex("01 00 a7 01 66 54 55 80 02 55 00 00 00 5d e6 01 0a a2")));
        let s = serial("208850");
        assert_eq!(
            TransmitPacket::new(s, 0x8D, vec![], 64).encode(),
            Ok(unhex("01 00 a7 01 20 88 50 80 00 00 02 01 00 8d c7 00"))
        );
        let history = TransmitPacket::new(s, 0x80, vec![3], 1024).encode();
        assert_eq!(history, Ok(unhex("01 00 a7 01 20 88 50 80 01 00 02 02 00 80 9b 03 36")));
        let glucose = TransmitPacket::new(s, 0x9A, vec![0, 0, 0, 3], 1024).encode();
        assert_eq!(glucose, Ok(vec![1, 0, 167, 1, 32, 136, 80, 128, 4, 0, 2, 2, 0, 154, 34, 0, 0, 0, 3, 54]));
        let bytes = history.unwrap_or_default();
        let back = TransmitPacket::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.code, back.params.as_slice(), back.pages), (0x80, &[3u8][..], 2));
        let mut bad = bytes.clone();
        bad[15] = 4;
        assert_eq!(TransmitPacket::decode(&bad), Err(StickError::TransmitCrc("parameters")));
        assert!(TransmitPacket::decode(&[1, 0, 0xa7]).is_err());
    }

    /// decocare `lib.py`: the decoded air packet of a 722's model answer, CRC8 0xc2.
    #[test]
    fn pump_packet_matches_decocare_lib() {
        let mut body = vec![0x09, 0x03, 0x37, 0x32, 0x32];
        body.resize(65, 0);
        let p = PumpPacket { serial: serial("473362"), code: 0x8D, body };
        let bytes = p.encode();
        assert_eq!(bytes.len(), 71);
        assert_eq!(bytes.last(), Some(&0xC2));
        let back = PumpPacket::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, p);
        assert_eq!(&back.stick_payload()[..4], &[3, b'7', b'2', b'2']);
        let mut bad = bytes;
        bad[3] ^= 0x10;
        assert!(matches!(PumpPacket::decode(&bad), Err(StickError::BadCrc { .. })));
    }

    #[test]
    fn stick_replies_and_serials() {
        assert_eq!(parse_stick_reply(&[]), Err(StickError::Empty));
        assert_eq!(parse_stick_reply(&encode_stick_nak()), Err(StickError::Nak));
        assert_eq!(parse_stick_reply(&[2, 0x55, 0]), Err(StickError::Unexpected { expected: 1, found: 2 }));
        assert_eq!(parse_stick_reply(&[1, 0x55]).map(<[u8]>::len).ok(), None);
        assert_eq!(encode_stick_reply(&[7]).len(), 64);
        assert_eq!(serial("208850").0, [0x20, 0x88, 0x50]);
        assert_eq!(serial("A1b2C3").0, [0xA1, 0xB2, 0xC3]);
        assert_eq!(serial("208850").to_string(), "208850");
        for bad in ["20885", "2088500", "20885x", ""] {
            assert!(bad.parse::<PumpSerial>().is_err(), "{bad}");
        }
    }
}
