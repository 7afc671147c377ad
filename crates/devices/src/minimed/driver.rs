//! A sans-IO driver for a MiniMed Paradigm pump behind a CareLink USB stick: a state machine
//! that says which USB transfer to make next ([`Action`]) and is told what happened
//! (`on_written`, `on_read`, `on_timeout`, `on_waited`). It never touches a device, a clock or a
//! thread, so the same code runs natively (the CLI, the tests, through [`run_blocking`]) and in
//! the browser (WebUSB `transferOut` / `transferIn(64)`, `setTimeout` for the waits).
//!
//! The sequence follows openaps/decocare: `stick.py` `Stick.open` (ProductInfo, signal strength
//! until ≥ 50, interface statistics, a buffer clear), `session.py` `Pump.power_control` (the
//! PowerControl wake-up: TransmitPacket `0x5D [01 0A]`, ~12 s while the stick repeats it until
//! the pump's radio wakes, then a download of the pump's ack), and for every command
//! `Session.execute`: TransmitPacket, wait the command's effect time, then `Stick.download`:
//! poll LinkStatus until bytes wait, ReadRadio them, again until the chunk marked end-of-data.
//! Then: model, firmware, clock, battery, reservoir, settings, the three basal profiles, carb
//! ratios, sensitivities, BG targets, ReadCurPageNumber, history pages 0, 1, … (newest first;
//! an incremental read stops after the first page whose oldest record is at or before
//! [`DriverConfig::since`]), ReadCurGlucosePageNumber and CGM pages newest first (same stop).
//!
//! Errors: a NAK from the stick, a lost USB packet, a radio chunk with a bad CRC8, a pump that
//! does not answer or answers busy, or an incomplete page make the command start over (after
//! draining the stick's buffer), up to [`DriverConfig::retries`] times; then a
//! [`DriverError`] says what to do about it.
//!
//! The clock: the dump pairs the pump's clock with the uploader's UTC ([`ClockReading`]). The
//! driver cannot read a clock, so the caller gives it the time with [`Driver::set_utc_now`];
//! the driver pairs the pump's clock with the latest value it was given when the ReadRTC answer
//! arrives. Call it before every `on_read` (it is cheap), or at least before the upload starts
//! (the pairing is then off by the seconds the wake-up took). Without it the dump has no
//! `clock` (the raw ReadRTC answer is still under [`response::CLOCK`]).

use super::dump::{ClockReading, DumpPage, PumpDump, response};
use super::pump::{self, code};
use super::stick::{
    self, Interface, LinkStatus, ProductInfo, PumpSerial, RADIO_OVERHEAD, RADIO_STATUS_NAK, RADIO_STATUS_TIMEOUT,
    REPLY_COMMAND, REPLY_RADIO, StickError, TransmitPacket,
};
use super::{PAGE_LEN, PumpModel, glucose, history, page_data};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::VecDeque;

/// How to read a pump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// The pump's serial number: the 6 digits on its back.
    pub serial: String,
    /// The newest pump-local time already stored: history and CGM reading stop after the first
    /// page whose oldest record is at or before it. `None` reads every page.
    pub since: Option<NaiveDateTime>,
    /// History pages to read at most (a pump keeps 36).
    pub max_history_pages: u32,
    /// CGM pages to read at most.
    pub max_glucose_pages: u32,
    /// How many times a failed command is tried again.
    pub retries: u32,
}

impl DriverConfig {
    /// A full read of the pump with this serial, with the default limits.
    pub fn new(serial: impl Into<String>) -> Self {
        DriverConfig { serial: serial.into(), since: None, max_history_pages: 36, max_glucose_pages: 32, retries: 3 }
    }
}

/// Why an upload failed, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("the CareLink USB stick did not answer properly: unplug it, plug it back in and try again")]
    StickNotResponding,
    #[error(
        "the pump did not answer: move it closer to the stick, check the serial number and the pump's battery (tried {} times)", after_retries + 1
    )]
    PumpNotResponding { after_retries: u32 },
    #[error(
        "too much radio noise ({bad_crcs} damaged packets): put the pump right next to the stick, away from Wi-Fi routers, microwave ovens and other USB devices, and try again"
    )]
    RadioNoise { bad_crcs: u32 },
    #[error(
        "the pump is busy (delivering a bolus, priming, or showing a menu): wait until it is back on its home screen and try again"
    )]
    PumpBusy,
    #[error("the pump serial number must be the 6 digits printed on the back of the pump (SN), not {0:?}")]
    BadSerial(String),
    #[error("the upload was cancelled")]
    Cancelled,
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// What the caller does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send these bytes to the stick (one bulk OUT transfer), then call
    /// [`Driver::on_written`] (or [`Driver::on_timeout`] if the transfer failed).
    Write(Vec<u8>),
    /// Read one bulk IN transfer of up to 64 bytes, then call [`Driver::on_read`] with what came,
    /// or [`Driver::on_timeout`] when nothing came (the driver expects a timeout of about half a
    /// second, decocare's serial timeout).
    Read,
    /// Let this much time pass (the radio needs it; a simulator may skip it), then call
    /// [`Driver::on_waited`].
    Wait { ms: u32 },
    /// The upload is complete.
    Done(Box<PumpDump>),
    /// The upload failed; nothing more is to be done.
    Failed(DriverError),
}

/// What happened to the last [`Action`], for [`run_blocking`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Written,
    Read(Vec<u8>),
    Timeout,
    Waited,
    /// Stop the upload ([`Driver::cancel`]).
    Cancel,
}

/// Where the upload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Connecting,
    WakingPump,
    ReadingIdentity,
    ReadingSettings,
    ReadingHistory,
    ReadingGlucose,
    Finished,
}

impl Stage {
    /// The part of the whole upload this stage covers (history and CGM pages dominate).
    fn span(self) -> (f32, f32) {
        match self {
            Stage::Connecting => (0.0, 0.02),
            Stage::WakingPump => (0.02, 0.05),
            Stage::ReadingIdentity => (0.05, 0.08),
            Stage::ReadingSettings => (0.08, 0.12),
            Stage::ReadingHistory => (0.12, 0.6),
            Stage::ReadingGlucose => (0.6, 1.0),
            Stage::Finished => (1.0, 1.0),
        }
    }
}

/// Progress for a progress bar: steps within the current stage, and the fraction of the
/// whole upload (never goes back; 1.0 when finished).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    pub done: u32,
    /// Steps in this stage; for history and CGM known once the pump has said how many pages
    /// it holds (0 before).
    pub total: u32,
    pub fraction: f32,
}

// Timing and limits. decocare: serial timeout 0.5 s, polls every 0.1 s for about a second
// (then more slowly), PowerControl effect time 12 s, other commands 0.5 s (history 0.1 s),
// 0.25 s before the first poll.
const STICK_TRIES: u32 = 5;
const STICK_RETRY_MS: u32 = 250;
const POLL_MS: u32 = 100;
const MAX_POLLS: u32 = 30;
const MAX_STALE: u32 = 8;
const MAX_FLUSH_READS: u32 = 16;
const MAX_DRAINS: u32 = 8;
const SIGNAL_MIN: u8 = 50;
const SIGNAL_TRIES: u32 = 10;
const WAKE_MINUTES: u8 = 10;
const FIRST_POLL_MS: u32 = 250;
const POWER_EFFECT_MS: u32 = 12_000;
const EFFECT_MS: u32 = 500;
const PAGE_EFFECT_MS: u32 = 100;
const POWER_ACK_REREADS: u32 = 20;
/// Largest answer accepted (a page); more means two answers got mixed.
const MAX_ANSWER: usize = PAGE_LEN;

// ---------------------------------------------------------------- link layer

/// What a USB exchange's reply looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplyKind {
    /// One packet starting `01` (stick commands, TransmitPacket).
    Stick,
    /// A ReadRadio reply starting `02`, `14 + n` bytes over one or more packets.
    Radio,
}

/// A request of the operation layer to the link layer.
#[derive(Clone, Debug, PartialEq)]
enum Req {
    /// Write, then read the reply.
    Exchange(Vec<u8>, ReplyKind),
    /// Read a reply without writing (a slow acknowledgement).
    Read(ReplyKind),
    Wait(u32),
    /// Read and drop packets until a read times out.
    Flush,
}

/// What the link layer reports back.
#[derive(Clone, Debug, PartialEq)]
enum Res {
    Reply(Vec<u8>),
    Timeout { partial: bool },
    Waited,
    Flushed,
}

#[derive(Clone, Debug)]
enum Ev<'a> {
    Written,
    Read(&'a [u8]),
    Timeout,
    Waited,
}

#[derive(Clone, Debug, Default)]
enum Link {
    #[default]
    Idle,
    Writing(ReplyKind),
    Reading {
        kind: ReplyKind,
        buf: Vec<u8>,
        stale: u32,
    },
    Waiting,
    Flushing {
        reads: u32,
    },
}

enum LinkStep {
    Io(Action),
    Done(Res),
}

impl Link {
    fn start(&mut self, req: Req) -> Action {
        match req {
            Req::Exchange(bytes, kind) => {
                *self = Link::Writing(kind);
                Action::Write(bytes)
            }
            Req::Read(kind) => {
                *self = Link::Reading { kind, buf: Vec::new(), stale: 0 };
                Action::Read
            }
            Req::Wait(ms) => {
                *self = Link::Waiting;
                Action::Wait { ms }
            }
            Req::Flush => {
                *self = Link::Flushing { reads: 0 };
                Action::Read
            }
        }
    }

    fn expecting(&self) -> &'static str {
        match self {
            Link::Idle => "nothing",
            Link::Writing(_) => "on_written",
            Link::Reading { .. } | Link::Flushing { .. } => "on_read or on_timeout",
            Link::Waiting => "on_waited",
        }
    }

    fn on(&mut self, ev: Ev<'_>) -> Result<LinkStep, String> {
        let state = std::mem::take(self);
        match (state, ev) {
            (Link::Writing(kind), Ev::Written) => {
                *self = Link::Reading { kind, buf: Vec::new(), stale: 0 };
                Ok(LinkStep::Io(Action::Read))
            }
            (Link::Writing(_), Ev::Timeout) => Ok(LinkStep::Done(Res::Timeout { partial: false })),
            (Link::Reading { kind, mut buf, stale }, Ev::Read(bytes)) => {
                let head = match kind {
                    ReplyKind::Stick => REPLY_COMMAND,
                    ReplyKind::Radio => REPLY_RADIO,
                };
                if buf.is_empty() && bytes.first() != Some(&head) {
                    // A stale packet (what a lost exchange left behind) or an empty one.
                    if stale + 1 > MAX_STALE {
                        return Ok(LinkStep::Done(Res::Reply(bytes.to_vec())));
                    }
                    *self = Link::Reading { kind, buf, stale: stale + 1 };
                    return Ok(LinkStep::Io(Action::Read));
                }
                buf.extend_from_slice(bytes);
                let complete = match kind {
                    ReplyKind::Stick => true,
                    ReplyKind::Radio => stick::radio_reply_len(&buf).is_some_and(|total| buf.len() >= total),
                };
                if complete {
                    Ok(LinkStep::Done(Res::Reply(buf)))
                } else {
                    *self = Link::Reading { kind, buf, stale };
                    Ok(LinkStep::Io(Action::Read))
                }
            }
            (Link::Reading { buf, .. }, Ev::Timeout) => Ok(LinkStep::Done(Res::Timeout { partial: !buf.is_empty() })),
            (Link::Waiting, Ev::Waited) => Ok(LinkStep::Done(Res::Waited)),
            (Link::Flushing { reads }, Ev::Read(_)) => {
                if reads + 1 >= MAX_FLUSH_READS {
                    return Ok(LinkStep::Done(Res::Flushed));
                }
                *self = Link::Flushing { reads: reads + 1 };
                Ok(LinkStep::Io(Action::Read))
            }
            (Link::Flushing { .. }, Ev::Timeout) => Ok(LinkStep::Done(Res::Flushed)),
            (state, ev) => {
                let msg = format!(
                    "the driver expected {} but got {}",
                    state.expecting(),
                    match ev {
                        Ev::Written => "on_written",
                        Ev::Read(_) => "on_read",
                        Ev::Timeout => "on_timeout",
                        Ev::Waited => "on_waited",
                    }
                );
                *self = state;
                Err(msg)
            }
        }
    }
}

// ---------------------------------------------------------------- operations

enum OpStep {
    Req(Req),
    Done(Vec<u8>),
    Fail(DriverError),
}

/// A stick command: write, read the `01 55` reply, retry on NAK, garbage or timeout.
struct StickOp {
    cmd: Vec<u8>,
    tries: u32,
    backing_off: bool,
}

impl StickOp {
    fn new(cmd: Vec<u8>) -> Self {
        StickOp { cmd, tries: 0, backing_off: false }
    }

    fn start(&mut self) -> OpStep {
        self.backing_off = false;
        OpStep::Req(Req::Exchange(self.cmd.clone(), ReplyKind::Stick))
    }

    fn on(&mut self, res: Res) -> OpStep {
        if self.backing_off {
            return self.start();
        }
        match res {
            Res::Reply(b) => match stick::parse_stick_reply(&b) {
                Ok(body) => OpStep::Done(body.to_vec()),
                Err(_) => self.retry(),
            },
            _ => self.retry(),
        }
    }

    fn retry(&mut self) -> OpStep {
        self.tries += 1;
        if self.tries >= STICK_TRIES {
            return OpStep::Fail(DriverError::StickNotResponding);
        }
        self.backing_off = true;
        OpStep::Req(Req::Wait(STICK_RETRY_MS))
    }
}

/// Why one attempt at a pump command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    NoAnswer,
    Lost,
    BadCrc,
    Busy,
    StickNak,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PumpPhase {
    Transmit,
    Effect,
    Poll,
    PollPause,
    Radio,
    Flush,
    DrainPoll,
    DrainRadio,
    Backoff,
}

/// A pump command (decocare `Session.execute` + `Stick.download`).
struct PumpOp {
    code: u8,
    packet: Vec<u8>,
    /// Bytes the answer must have (0: PowerControl, whose silence is tolerated as decocare
    /// does: it only logs what the download brings).
    min_len: usize,
    effect_ms: u32,
    retries: u32,
    attempts: u32,
    phase: PumpPhase,
    payload: Vec<u8>,
    polls: u32,
    poll_errors: u32,
    drains: u32,
    rereads: u32,
    bad_crcs: u32,
    last: Failure,
}

impl PumpOp {
    fn new(serial: PumpSerial, code: u8, params: Vec<u8>, retries: u32) -> Result<Self, DriverError> {
        let len = pump::answer_len(code);
        let packet = TransmitPacket::new(serial, code, params, len)
            .encode()
            .map_err(|e| DriverError::Protocol(e.to_string()))?;
        let effect_ms = match code {
            code::POWER_CONTROL => POWER_EFFECT_MS,
            code::READ_HISTORY_DATA | code::READ_GLUCOSE_HISTORY => PAGE_EFFECT_MS,
            _ => EFFECT_MS,
        } + FIRST_POLL_MS;
        Ok(PumpOp {
            code,
            packet,
            // Pages must be whole; basal profiles (decocare asks for two frames) and the rest
            // need one frame.
            min_len: if len == PAGE_LEN { PAGE_LEN } else { len.min(64) },
            effect_ms,
            retries,
            attempts: 0,
            phase: PumpPhase::Transmit,
            payload: Vec::new(),
            polls: 0,
            poll_errors: 0,
            drains: 0,
            rereads: 0,
            bad_crcs: 0,
            last: Failure::NoAnswer,
        })
    }

    fn is_power(&self) -> bool {
        self.code == code::POWER_CONTROL
    }

    fn start(&mut self) -> OpStep {
        self.phase = PumpPhase::Transmit;
        self.polls = 0;
        self.poll_errors = 0;
        self.drains = 0;
        self.rereads = 0;
        self.payload.clear();
        OpStep::Req(Req::Exchange(self.packet.clone(), ReplyKind::Stick))
    }

    fn poll(&mut self) -> OpStep {
        self.phase = PumpPhase::Poll;
        OpStep::Req(Req::Exchange(stick::link_status(), ReplyKind::Stick))
    }

    fn pause(&mut self, ms: u32) -> OpStep {
        self.phase = PumpPhase::PollPause;
        OpStep::Req(Req::Wait(ms))
    }

    fn not_yet(&mut self) -> OpStep {
        self.polls += 1;
        if self.polls > MAX_POLLS {
            return self.no_answer();
        }
        self.pause(POLL_MS)
    }

    fn no_answer(&mut self) -> OpStep {
        if self.is_power() {
            // decocare's power_control never checks the download: the next command tells.
            return OpStep::Done(std::mem::take(&mut self.payload));
        }
        self.fail(Failure::NoAnswer, false)
    }

    fn poll_error(&mut self) -> OpStep {
        self.poll_errors += 1;
        if self.poll_errors >= STICK_TRIES {
            return OpStep::Fail(DriverError::StickNotResponding);
        }
        self.pause(STICK_RETRY_MS)
    }

    fn drain_poll(&mut self) -> OpStep {
        self.phase = PumpPhase::DrainPoll;
        OpStep::Req(Req::Exchange(stick::link_status(), ReplyKind::Stick))
    }

    fn backoff(&mut self) -> OpStep {
        self.phase = PumpPhase::Backoff;
        OpStep::Req(Req::Wait(match self.last {
            Failure::Busy => 3000,
            Failure::StickNak => STICK_RETRY_MS,
            _ => 500,
        }))
    }

    fn error(&self) -> DriverError {
        match self.last {
            Failure::NoAnswer | Failure::Lost => DriverError::PumpNotResponding { after_retries: self.retries },
            Failure::BadCrc => DriverError::RadioNoise { bad_crcs: self.bad_crcs },
            Failure::Busy => DriverError::PumpBusy,
            Failure::StickNak => DriverError::StickNotResponding,
        }
    }

    /// One attempt failed: try again after clearing what the stick still holds, or give up.
    fn fail(&mut self, why: Failure, flush: bool) -> OpStep {
        self.attempts += 1;
        self.last = why;
        if self.attempts > self.retries {
            return OpStep::Fail(self.error());
        }
        self.payload.clear();
        if flush {
            self.phase = PumpPhase::Flush;
            OpStep::Req(Req::Flush)
        } else {
            self.drain_poll()
        }
    }

    fn on_radio(&mut self, raw: &[u8]) -> OpStep {
        let r = match stick::parse_radio_reply(raw) {
            Ok(r) => r,
            Err(StickError::BadCrc { .. }) => {
                self.bad_crcs += 1;
                return self.fail(Failure::BadCrc, false);
            }
            Err(_) => return self.fail(Failure::Lost, true),
        };
        if r.data.is_empty() {
            if r.eod && self.payload.len() >= self.min_len && !self.payload.is_empty() {
                return OpStep::Done(std::mem::take(&mut self.payload));
            }
            if r.status == RADIO_STATUS_TIMEOUT || r.eod {
                return self.no_answer();
            }
            return self.not_yet();
        }
        if r.status == RADIO_STATUS_NAK && r.data.len() <= 1 {
            return self.fail(Failure::Busy, false);
        }
        self.payload.extend_from_slice(&r.data);
        if self.payload.len() > MAX_ANSWER {
            return self.fail(Failure::Lost, false);
        }
        if r.eod {
            if self.payload.len() >= self.min_len {
                OpStep::Done(std::mem::take(&mut self.payload))
            } else {
                // Frames went missing: the answer is incomplete.
                self.fail(Failure::Lost, false)
            }
        } else {
            self.polls = 0;
            self.poll()
        }
    }

    fn on(&mut self, res: Res) -> OpStep {
        use PumpPhase as P;
        match (self.phase, res) {
            (P::Transmit, Res::Reply(b)) => match stick::parse_stick_reply(&b) {
                Ok(_) => {
                    self.phase = P::Effect;
                    OpStep::Req(Req::Wait(self.effect_ms))
                }
                Err(StickError::Nak) => self.fail(Failure::StickNak, false),
                Err(_) => self.fail(Failure::Lost, true),
            },
            (P::Transmit, Res::Timeout { .. }) => {
                if self.is_power() && self.rereads < POWER_ACK_REREADS {
                    // The stick may answer only once it has sent the whole wake-up burst.
                    self.rereads += 1;
                    OpStep::Req(Req::Read(ReplyKind::Stick))
                } else {
                    self.fail(Failure::Lost, false)
                }
            }
            (P::Effect | P::PollPause, Res::Waited) => self.poll(),
            (P::Poll, Res::Reply(b)) => match stick::parse_stick_reply(&b).and_then(LinkStatus::decode) {
                Ok(ls) if ls.size > 0 => {
                    self.phase = P::Radio;
                    let size = ls.size.max(RADIO_OVERHEAD as u16);
                    OpStep::Req(Req::Exchange(stick::read_radio(size), ReplyKind::Radio))
                }
                Ok(_) => self.not_yet(),
                Err(_) => self.poll_error(),
            },
            (P::Poll, Res::Timeout { .. }) => self.poll_error(),
            (P::Radio, Res::Reply(b)) => self.on_radio(&b),
            (P::Radio, Res::Timeout { .. }) => self.fail(Failure::Lost, true),
            (P::Flush, Res::Flushed) => self.drain_poll(),
            (P::DrainPoll, Res::Reply(b)) => match stick::parse_stick_reply(&b).and_then(LinkStatus::decode) {
                Ok(ls) if ls.size > 0 && self.drains < MAX_DRAINS => {
                    self.drains += 1;
                    self.phase = P::DrainRadio;
                    let size = ls.size.max(RADIO_OVERHEAD as u16);
                    OpStep::Req(Req::Exchange(stick::read_radio(size), ReplyKind::Radio))
                }
                _ => self.backoff(),
            },
            (P::DrainPoll, _) => self.backoff(),
            (P::DrainRadio, Res::Timeout { partial: true }) => {
                self.phase = P::Flush;
                OpStep::Req(Req::Flush)
            }
            (P::DrainRadio, _) => self.drain_poll(),
            (P::Backoff, Res::Waited) => self.start(),
            (phase, res) => OpStep::Fail(DriverError::Protocol(format!("internal: {res:?} while {phase:?}"))),
        }
    }
}

enum Op {
    Stick(StickOp),
    /// A ReadRadio whose content does not matter (clearing the buffer).
    Discard(Vec<u8>),
    Pump(Box<PumpOp>),
    Pause(u32),
}

impl Op {
    fn start(&mut self) -> OpStep {
        match self {
            Op::Stick(o) => o.start(),
            Op::Discard(cmd) => OpStep::Req(Req::Exchange(cmd.clone(), ReplyKind::Radio)),
            Op::Pump(o) => o.start(),
            Op::Pause(ms) => OpStep::Req(Req::Wait(*ms)),
        }
    }

    fn on(&mut self, res: Res) -> OpStep {
        match self {
            Op::Stick(o) => o.on(res),
            Op::Discard(_) | Op::Pause(_) => OpStep::Done(Vec::new()),
            Op::Pump(o) => o.on(res),
        }
    }
}

// ---------------------------------------------------------------- plan

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    ProductInfo,
    Signal,
    Stats(Interface),
    ClearStatus,
    ClearRadio(u16),
    Pause(u32),
    Power,
    Model,
    Firmware,
    Clock,
    Battery,
    Reservoir,
    Settings(u8),
    Basal(u8),
    CarbRatios,
    Sensitivities,
    BgTargets(u8),
    CurPage,
    History(u32),
    CurGlucosePage,
    Glucose(u32),
}

impl Task {
    fn stage(self) -> Stage {
        match self {
            Task::ProductInfo
            | Task::Signal
            | Task::Stats(_)
            | Task::ClearStatus
            | Task::ClearRadio(_)
            | Task::Pause(_) => Stage::Connecting,
            Task::Power => Stage::WakingPump,
            Task::Model | Task::Firmware | Task::Clock | Task::Battery | Task::Reservoir => Stage::ReadingIdentity,
            Task::Settings(_)
            | Task::Basal(_)
            | Task::CarbRatios
            | Task::Sensitivities
            | Task::BgTargets(_)
            | Task::CurPage => Stage::ReadingSettings,
            Task::History(_) => Stage::ReadingHistory,
            Task::CurGlucosePage | Task::Glucose(_) => Stage::ReadingGlucose,
        }
    }

    /// Whether finishing it counts as a step of its stage's progress.
    fn counts(self) -> bool {
        !matches!(self, Task::ClearRadio(_) | Task::Pause(_) | Task::CurGlucosePage)
    }
}

enum Terminal {
    Done,
    Failed(DriverError),
}

/// The driver. See the module documentation.
pub struct Driver {
    cfg: DriverConfig,
    serial: PumpSerial,
    link: Link,
    op: Option<Op>,
    task: Option<Task>,
    queue: VecDeque<Task>,
    started: bool,
    terminal: Option<Terminal>,
    model: Option<PumpModel>,
    dump: Option<PumpDump>,
    pump_clock: Option<NaiveDateTime>,
    utc_now: Option<DateTime<Utc>>,
    stick_info: Option<ProductInfo>,
    signal_tries: u32,
    clear_rounds: u32,
    page_crc_retries: u32,
    glucose_left: u32,
    /// History pages to read: the limit, then what the pump holds.
    history_total: u32,
    stage: Stage,
    done: u32,
    total: u32,
    floor: f32,
}

impl Driver {
    /// A driver for this configuration; [`DriverError::BadSerial`] when the serial is not 6
    /// hex digits.
    pub fn new(cfg: DriverConfig) -> Result<Self, DriverError> {
        let serial = cfg.serial.parse::<PumpSerial>().map_err(|_| DriverError::BadSerial(cfg.serial.clone()))?;
        let history_total = cfg.max_history_pages;
        Ok(Driver {
            cfg,
            serial,
            link: Link::Idle,
            op: None,
            task: None,
            queue: VecDeque::new(),
            started: false,
            terminal: None,
            model: None,
            dump: None,
            pump_clock: None,
            utc_now: None,
            stick_info: None,
            signal_tries: 0,
            clear_rounds: 0,
            page_crc_retries: 0,
            glucose_left: 0,
            history_total,
            stage: Stage::Connecting,
            done: 0,
            total: 5,
            floor: 0.0,
        })
    }

    /// The first action.
    pub fn start(&mut self) -> Action {
        if self.started {
            return self
                .repeat_terminal()
                .unwrap_or_else(|| Action::Failed(DriverError::Protocol("start() was called twice".into())));
        }
        self.started = true;
        self.queue.extend([
            Task::ProductInfo,
            Task::Signal,
            Task::Stats(Interface::Usb),
            Task::Stats(Interface::Radio),
            Task::ClearStatus,
            Task::Power,
            Task::Model,
        ]);
        match self.next_op() {
            Some(step) => self.run(step),
            None => self.finish(),
        }
    }

    /// The bulk OUT transfer of the last [`Action::Write`] went through.
    pub fn on_written(&mut self) -> Action {
        self.feed(Ev::Written)
    }

    /// The bulk IN transfer of the last [`Action::Read`] brought these bytes.
    pub fn on_read(&mut self, bytes: &[u8]) -> Action {
        self.feed(Ev::Read(bytes))
    }

    /// The last transfer timed out (nothing came, or the write failed).
    pub fn on_timeout(&mut self) -> Action {
        self.feed(Ev::Timeout)
    }

    /// The last [`Action::Wait`] is over.
    pub fn on_waited(&mut self) -> Action {
        self.feed(Ev::Waited)
    }

    /// Stops the upload: [`Action::Failed`] with [`DriverError::Cancelled`], now and after.
    pub fn cancel(&mut self) -> Action {
        self.terminal = Some(Terminal::Failed(DriverError::Cancelled));
        Action::Failed(DriverError::Cancelled)
    }

    /// The uploader's UTC clock now; see the module documentation.
    pub fn set_utc_now(&mut self, utc: DateTime<Utc>) {
        self.utc_now = Some(utc);
        if let (Some(pump), Some(d)) = (self.pump_clock, self.dump.as_mut())
            && d.clock.is_none()
        {
            d.clock = Some(ClockReading { pump, utc });
        }
    }

    /// The pump's clock, once read.
    pub fn pump_clock(&self) -> Option<NaiveDateTime> {
        self.pump_clock
    }

    /// The pump's model, once read.
    pub fn model(&self) -> Option<PumpModel> {
        self.model
    }

    /// What the stick said about itself (ComLink II, firmware, frequency).
    pub fn stick_info(&self) -> Option<&ProductInfo> {
        self.stick_info.as_ref()
    }

    /// Where the upload is.
    pub fn progress(&self) -> Progress {
        Progress {
            stage: self.stage,
            done: self.done.min(self.total),
            total: self.total,
            fraction: self.raw_fraction().max(self.floor),
        }
    }

    fn raw_fraction(&self) -> f32 {
        let (a, b) = self.stage.span();
        let within = if self.total == 0 { 0.0 } else { self.done.min(self.total) as f32 / self.total as f32 };
        a + (b - a) * within
    }

    fn bump_floor(&mut self) {
        self.floor = self.floor.max(self.raw_fraction()).min(1.0);
    }

    fn repeat_terminal(&self) -> Option<Action> {
        match &self.terminal {
            Some(Terminal::Failed(e)) => Some(Action::Failed(e.clone())),
            Some(Terminal::Done) => {
                Some(Action::Failed(DriverError::Protocol("the upload is already finished".into())))
            }
            None => None,
        }
    }

    fn feed(&mut self, ev: Ev<'_>) -> Action {
        if let Some(a) = self.repeat_terminal() {
            return a;
        }
        if !self.started {
            return self.fail(DriverError::Protocol("call start() first".into()));
        }
        match self.link.on(ev) {
            Err(msg) => self.fail(DriverError::Protocol(msg)),
            Ok(LinkStep::Io(a)) => a,
            Ok(LinkStep::Done(res)) => {
                let step = match self.op.as_mut() {
                    Some(op) => op.on(res),
                    None => {
                        return self.fail(DriverError::Protocol("internal: no operation".into()));
                    }
                };
                self.run(step)
            }
        }
    }

    fn run(&mut self, mut step: OpStep) -> Action {
        loop {
            match step {
                OpStep::Req(r) => return self.link.start(r),
                OpStep::Fail(e) => return self.fail(e),
                OpStep::Done(body) => {
                    if let Err(e) = self.complete(&body) {
                        return self.fail(e);
                    }
                    match self.next_op() {
                        Some(s) => step = s,
                        None => return self.finish(),
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: DriverError) -> Action {
        self.terminal = Some(Terminal::Failed(e.clone()));
        self.op = None;
        Action::Failed(e)
    }

    fn finish(&mut self) -> Action {
        self.op = None;
        let Some(dump) = self.dump.take() else {
            return self.fail(DriverError::Protocol("the pump's model was never read".into()));
        };
        self.terminal = Some(Terminal::Done);
        self.stage = Stage::Finished;
        self.done = 1;
        self.total = 1;
        self.floor = 1.0;
        Action::Done(Box::new(dump))
    }

    fn stage_total(&self, stage: Stage) -> u32 {
        let count = |f: fn(&Task) -> bool| {
            let n = self.queue.iter().filter(|t| f(t)).count();
            u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1)
        };
        match stage {
            Stage::Connecting => 5,
            Stage::WakingPump => 1,
            Stage::ReadingIdentity => 5,
            Stage::ReadingSettings => count(|t| t.stage() == Stage::ReadingSettings),
            Stage::ReadingHistory => self.history_total,
            Stage::ReadingGlucose => 0,
            Stage::Finished => 1,
        }
    }

    fn next_op(&mut self) -> Option<OpStep> {
        let task = self.queue.pop_front()?;
        let stage = task.stage();
        if stage != self.stage {
            self.bump_floor();
            self.stage = stage;
            self.done = 0;
            self.total = self.stage_total(stage);
        }
        let serial = self.serial;
        let retries = self.cfg.retries;
        let pump = |c: u8, params: Vec<u8>| PumpOp::new(serial, c, params, retries).map(|o| Op::Pump(Box::new(o)));
        let op = match task {
            Task::ProductInfo => Ok(Op::Stick(StickOp::new(stick::product_info()))),
            Task::Signal => Ok(Op::Stick(StickOp::new(stick::signal_strength()))),
            Task::Stats(side) => Ok(Op::Stick(StickOp::new(stick::interface_stats(side)))),
            Task::ClearStatus => Ok(Op::Stick(StickOp::new(stick::link_status()))),
            Task::ClearRadio(size) => Ok(Op::Discard(stick::read_radio(size))),
            Task::Pause(ms) => Ok(Op::Pause(ms)),
            Task::Power => pump(code::POWER_CONTROL, pump::power_control_params(WAKE_MINUTES)),
            Task::Model => pump(code::READ_PUMP_MODEL, vec![]),
            Task::Firmware => pump(code::READ_FIRMWARE_VERSION, vec![]),
            Task::Clock => pump(code::READ_RTC, vec![]),
            Task::Battery => pump(code::READ_BATTERY_STATUS, vec![]),
            Task::Reservoir => pump(code::READ_REMAINING_INSULIN, vec![]),
            Task::Settings(c) | Task::Basal(c) | Task::BgTargets(c) => pump(c, vec![]),
            Task::CarbRatios => pump(code::READ_CARB_RATIOS, vec![]),
            Task::Sensitivities => pump(code::READ_INSULIN_SENSITIVITIES, vec![]),
            Task::CurPage => pump(code::READ_CUR_PAGE_NUMBER, vec![]),
            Task::History(n) => pump(code::READ_HISTORY_DATA, vec![n.min(255) as u8]),
            Task::CurGlucosePage => pump(code::READ_CUR_GLUCOSE_PAGE_NUMBER, vec![]),
            Task::Glucose(p) => pump(code::READ_GLUCOSE_HISTORY, p.to_be_bytes().to_vec()),
        };
        let mut op = match op {
            Ok(op) => op,
            Err(e) => return Some(OpStep::Fail(e)),
        };
        let step = op.start();
        self.op = Some(op);
        self.task = Some(task);
        Some(step)
    }

    fn dump_mut(&mut self) -> Result<&mut PumpDump, DriverError> {
        self.dump.as_mut().ok_or_else(|| DriverError::Protocol("internal: no dump before the model".into()))
    }

    /// Handles a finished task's answer and plans what follows.
    fn complete(&mut self, body: &[u8]) -> Result<(), DriverError> {
        let Some(task) = self.task.take() else {
            return Err(DriverError::Protocol("internal: no task".into()));
        };
        if task.counts() {
            self.done += 1;
        }
        match task {
            Task::ProductInfo => self.stick_info = ProductInfo::decode(body).ok(),
            Task::Signal => {
                let s = stick::decode_signal_strength(body).unwrap_or(0);
                // decocare loops until ≥ 50; here a few tries, then go on anyway (the pump
                // commands' retries and errors tell if the radio is really not working).
                if s < SIGNAL_MIN && self.signal_tries < SIGNAL_TRIES {
                    self.signal_tries += 1;
                    self.done = self.done.saturating_sub(1);
                    self.queue.push_front(Task::Signal);
                    self.queue.push_front(Task::Pause(POLL_MS));
                }
            }
            Task::Stats(_) | Task::Pause(_) | Task::Power | Task::ClearRadio(_) => {}
            Task::ClearStatus => {
                if let Ok(ls) = LinkStatus::decode(body)
                    && ls.size > 0
                    && self.clear_rounds < MAX_DRAINS
                {
                    self.clear_rounds += 1;
                    self.done = self.done.saturating_sub(1);
                    self.queue.push_front(Task::ClearStatus);
                    self.queue.push_front(Task::ClearRadio(ls.size.max(RADIO_OVERHEAD as u16)));
                }
            }
            Task::Model => {
                let name = pump::decode_model(body).map_err(|e| DriverError::Protocol(e.to_string()))?;
                let model: PumpModel = name.parse().map_err(|_| {
                    DriverError::Protocol(format!("the pump says it is a model {name:?}, which Diabase cannot read"))
                })?;
                self.model = Some(model);
                let mut dump = PumpDump::new(&name, &self.cfg.serial);
                dump.set_response(response::MODEL, body);
                self.dump = Some(dump);
                self.plan_after_model(model);
            }
            Task::Firmware => {
                let fw = pump::decode_firmware(body).ok();
                let d = self.dump_mut()?;
                d.device.firmware = fw;
                d.set_response(response::FIRMWARE, body);
            }
            Task::Clock => {
                let t = pump::decode_clock(body).ok();
                self.pump_clock = t;
                let utc = self.utc_now;
                let d = self.dump_mut()?;
                d.set_response(response::CLOCK, body);
                if let (Some(pump), Some(utc)) = (t, utc) {
                    d.clock = Some(ClockReading { pump, utc });
                }
            }
            Task::Battery => self.dump_mut()?.set_response(response::BATTERY, body),
            Task::Reservoir => self.dump_mut()?.set_response(response::RESERVOIR, body),
            Task::Settings(_) => self.dump_mut()?.set_response(response::SETTINGS, body),
            Task::Basal(c) => {
                let key = match c {
                    code::READ_PROFILE_A => response::BASAL_A,
                    code::READ_PROFILE_B => response::BASAL_B,
                    _ => response::BASAL_STANDARD,
                };
                self.dump_mut()?.set_response(key, body);
            }
            Task::CarbRatios => self.dump_mut()?.set_response(response::CARB_RATIOS, body),
            Task::Sensitivities => self.dump_mut()?.set_response(response::SENSITIVITIES, body),
            Task::BgTargets(_) => self.dump_mut()?.set_response(response::BG_TARGETS, body),
            Task::CurPage => {
                let n = pump::decode_history_page_count(body).min(self.cfg.max_history_pages);
                self.history_total = n;
                if n > 0 {
                    self.queue.push_back(Task::History(0));
                } else {
                    self.plan_glucose();
                }
            }
            Task::History(n) => self.history_page(n, body)?,
            Task::CurGlucosePage => {
                let info = pump::decode_glucose_page_info(body).map_err(|e| DriverError::Protocol(e.to_string()))?;
                let count =
                    u32::from(info.glucose_pages).min(self.cfg.max_glucose_pages).min(info.page.saturating_add(1));
                self.total = count;
                self.done = 0;
                self.glucose_left = count;
                if count > 0 {
                    self.queue.push_back(Task::Glucose(info.page));
                }
            }
            Task::Glucose(p) => self.glucose_page(p, body)?,
        }
        self.bump_floor();
        Ok(())
    }

    fn plan_after_model(&mut self, model: PumpModel) {
        let g = model.generation();
        self.queue.extend([Task::Firmware, Task::Clock, Task::Battery, Task::Reservoir]);
        // decocare's per-model commands (models/__init__.py): ReadSettings 0xC0 from x15 (0x91
        // on a 512, 0x7F on a 511); the 512-style profiles from x12 (508/511 use other codes
        // and are not read); BG targets 0x9F from x15, 0x8C on a 512.
        match g {
            15.. => self.queue.push_back(Task::Settings(code::READ_SETTINGS)),
            12 => self.queue.push_back(Task::Settings(code::READ_SETTINGS_512)),
            11 => self.queue.push_back(Task::Settings(code::READ_SETTINGS_511)),
            _ => {}
        }
        if g >= 12 {
            self.queue.extend([
                Task::Basal(code::READ_PROFILE_STD),
                Task::Basal(code::READ_PROFILE_A),
                Task::Basal(code::READ_PROFILE_B),
                Task::CarbRatios,
                Task::Sensitivities,
                Task::BgTargets(if g >= 15 { code::READ_BG_TARGETS } else { code::READ_BG_TARGETS_512 }),
            ]);
        }
        self.queue.push_back(Task::CurPage);
    }

    fn plan_glucose(&mut self) {
        if self.model.is_some_and(|m| m.generation() >= 22) && self.cfg.max_glucose_pages > 0 {
            self.queue.push_back(Task::CurGlucosePage);
        }
    }

    fn history_page(&mut self, n: u32, body: &[u8]) -> Result<(), DriverError> {
        let page = body.get(..PAGE_LEN).unwrap_or(body);
        // A page whose CRC16 is wrong despite good radio CRCs: read it again a few times, then
        // keep it as it is (the server reports it; the bytes stay for a better decoder).
        if page_data(page).is_err() && self.page_crc_retries < self.cfg.retries {
            self.page_crc_retries += 1;
            self.done = self.done.saturating_sub(1);
            self.queue.push_front(Task::History(n));
            return Ok(());
        }
        self.page_crc_retries = 0;
        let stop = match (self.cfg.since, self.model) {
            (Some(since), Some(model)) => history::decode_history_page(page, model)
                .ok()
                .and_then(|p| p.events.iter().filter_map(|e| e.timestamp).min())
                .is_some_and(|oldest| oldest <= since),
            _ => false,
        };
        self.dump_mut()?.history_pages.push(DumpPage::new(n, page));
        if !stop && n + 1 < self.history_total {
            self.queue.push_back(Task::History(n + 1));
        } else {
            self.plan_glucose();
        }
        Ok(())
    }

    fn glucose_page(&mut self, p: u32, body: &[u8]) -> Result<(), DriverError> {
        let page = body.get(..PAGE_LEN).unwrap_or(body);
        if page_data(page).is_err() && self.page_crc_retries < self.cfg.retries {
            self.page_crc_retries += 1;
            self.done = self.done.saturating_sub(1);
            self.queue.push_front(Task::Glucose(p));
            return Ok(());
        }
        self.page_crc_retries = 0;
        let stop = self.cfg.since.is_some_and(|since| {
            glucose::decode_glucose_page(page)
                .ok()
                .and_then(|g| g.events.iter().filter_map(|e| e.timestamp).min())
                .is_some_and(|oldest| oldest <= since)
        });
        self.dump_mut()?.glucose_pages.push(DumpPage::new(p, page));
        self.glucose_left = self.glucose_left.saturating_sub(1);
        if !stop && self.glucose_left > 0 && p > 0 {
            self.queue.push_back(Task::Glucose(p - 1));
        }
        Ok(())
    }
}

/// Runs a driver to the end with blocking I/O: `io` performs each action and says what
/// happened. The dump's clock pairing needs [`Driver::set_utc_now`] (call it before, or use
/// [`run_blocking_with_clock`]).
pub fn run_blocking<F>(driver: &mut Driver, io: F) -> Result<PumpDump, DriverError>
where
    F: FnMut(&Action) -> Reply,
{
    run_blocking_with_clock(driver, io, || None)
}

/// [`run_blocking`], with `utc_now` asked for the time before every read is handed over (the
/// CLI passes the system clock; tests a fixed time).
pub fn run_blocking_with_clock<F, C>(driver: &mut Driver, mut io: F, mut utc_now: C) -> Result<PumpDump, DriverError>
where
    F: FnMut(&Action) -> Reply,
    C: FnMut() -> Option<DateTime<Utc>>,
{
    let mut action = driver.start();
    loop {
        match action {
            Action::Done(d) => return Ok(*d),
            Action::Failed(e) => return Err(e),
            _ => {}
        }
        action = match io(&action) {
            Reply::Written => driver.on_written(),
            Reply::Read(b) => {
                if let Some(u) = utc_now() {
                    driver.set_utc_now(u);
                }
                driver.on_read(&b)
            }
            Reply::Timeout => driver.on_timeout(),
            Reply::Waited => driver.on_waited(),
            Reply::Cancel => driver.cancel(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_serials_are_refused() {
        for s in ["", "12345", "1234567", "12345g"] {
            assert!(matches!(Driver::new(DriverConfig::new(s)), Err(DriverError::BadSerial(_))));
        }
        let msg = DriverError::PumpNotResponding { after_retries: 3 }.to_string();
        assert!(msg.contains("move it closer to the stick, check the serial number and the pump's battery"), "{msg}");
    }

    #[test]
    fn the_first_actions_are_product_info_then_signal() {
        let mut d = Driver::new(DriverConfig::new("208850")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.start(), Action::Write(vec![4, 0, 0]));
        assert_eq!(d.on_written(), Action::Read);
        // A stale radio packet is skipped; then the captured ProductInfo reply.
        assert_eq!(d.on_read(&[2, 0, 0]), Action::Read);
        let mut pi = vec![
            0x01, 0x55, 0x00, 0x0c, 0x17, 0x00, 0x00, 0x00, 0x00, b'C', b'o', b'm', b'L', b'i', b'n', b'k', b' ', b'I',
            b'I', 0x01, 0x10, 0x02, 0x00, 0x01, 0x01, 0x03,
        ];
        pi.resize(64, 0);
        assert_eq!(d.on_read(&pi), Action::Write(vec![6, 0, 0]));
        assert_eq!(d.stick_info().map(|i| i.description.as_str()), Some("ComLink II"));
        // Out-of-order callbacks are a protocol error, and stay one.
        let a = d.on_waited();
        assert!(matches!(a, Action::Failed(DriverError::Protocol(_))), "{a:?}");
        assert_eq!(d.on_written(), a);
    }

    #[test]
    fn a_dead_stick_is_reported() {
        let mut d = Driver::new(DriverConfig::new("208850")).unwrap_or_else(|e| panic!("{e}"));
        let mut a = d.start();
        for _ in 0..100 {
            a = match a {
                Action::Write(_) => d.on_written(),
                Action::Read => d.on_timeout(),
                Action::Wait { .. } => d.on_waited(),
                _ => break,
            };
        }
        assert_eq!(a, Action::Failed(DriverError::StickNotResponding));
        assert_eq!(d.progress().stage, Stage::Connecting);
    }
}
