//! Packet capture to a classic libpcap file, readable by Wireshark, tshark
//! and tcpdump.
//!
//! [`PcapWriter`] writes the format to any `io::Write`. [`PcapCapture`]
//! records frames to a file in two ways:
//! - as a pipeline's `#[observer]` it sees both directions, every received
//!   frame and every frame transmitted, in the order a capture on the
//!   interface would show them (`tpa::pipeline::Observer`);
//! - as a stage it records the frames reaching it and passes them on
//!   unchanged.
//!
//! Writes are buffered; the file is flushed when the capture is dropped (or
//! on [`PcapCapture::flush`]).
//!
//! The file is the original libpcap format (not pcapng): a 24-byte global
//! header, then a 16-byte record header before each frame, all little-endian
//! (the magic number tells readers the byte order), link type Ethernet.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use tpa::buf::PacketBuf;
use tpa::pipeline::Observer;
use tpa::stage::{Cx, Stage, Verdict};
use tpa::time::Clock;

/// The pcap link type of Ethernet II frames.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Magic of a file whose timestamps have microsecond fractions.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of a file whose timestamps have nanosecond fractions.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Resolution of the timestamps written to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampPrecision {
    /// Microseconds: readable by every pcap tool.
    Micros,
    /// Nanoseconds: readable by Wireshark, tshark and tcpdump ≥ 4.6.
    #[default]
    Nanos,
}

/// Writes the libpcap file format to `W`.
///
/// ```
/// use tpa_stages::pcap::{PcapWriter, TimestampPrecision};
/// let mut w = PcapWriter::new(Vec::new(), TimestampPrecision::Micros, 65535).unwrap();
/// w.write_frame(1_500_000_000, &[0u8; 60]).unwrap();
/// let bytes = w.into_inner().unwrap();
/// assert_eq!(bytes.len(), 24 + 16 + 60);
/// assert_eq!(bytes[..4], 0xa1b2c3d4u32.to_le_bytes());
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    precision: TimestampPrecision,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header and returns a writer for the frames.
    /// Frames longer than `snaplen` are cut to it (their original length is
    /// still recorded).
    pub fn new(mut out: W, precision: TimestampPrecision, snaplen: u32) -> io::Result<Self> {
        let magic = match precision {
            TimestampPrecision::Micros => MAGIC_MICROS,
            TimestampPrecision::Nanos => MAGIC_NANOS,
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            precision,
            snaplen,
        })
    }

    /// Appends one frame stamped `unix_ns` nanoseconds after the Unix epoch.
    pub fn write_frame(&mut self, unix_ns: u64, frame: &[u8]) -> io::Result<()> {
        self.write_segments(unix_ns, frame.len(), core::iter::once(frame))
    }

    /// Appends one frame of `len` bytes held in `segments` (a buffer
    /// chain's, in order: headers in the first, payload behind), stamped
    /// `unix_ns`.
    pub fn write_segments<'a>(
        &mut self,
        unix_ns: u64,
        len: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) -> io::Result<()> {
        let seconds = (unix_ns / 1_000_000_000) as u32;
        let fraction = match self.precision {
            TimestampPrecision::Micros => (unix_ns % 1_000_000_000 / 1_000) as u32,
            TimestampPrecision::Nanos => (unix_ns % 1_000_000_000) as u32,
        };
        let original = u32::try_from(len).unwrap_or(u32::MAX);
        let captured = original.min(self.snaplen);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&fraction.to_le_bytes());
        record[8..12].copy_from_slice(&captured.to_le_bytes());
        record[12..16].copy_from_slice(&original.to_le_bytes());
        self.out.write_all(&record)?;
        let mut left = captured as usize;
        for segment in segments {
            let n = segment.len().min(left);
            self.out.write_all(&segment[..n])?;
            left -= n;
        }
        Ok(())
    }

    /// Flushes buffered frames to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Counters of a [`PcapCapture`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapStats {
    /// Frames written to the file.
    pub written: u64,
    /// Frames not written because the file failed (see
    /// [`PcapCapture::last_error`]).
    pub failed: u64,
}

/// Appends frames to a pcap file: as a pipeline's `#[observer]`, every frame
/// received and transmitted; as a stage, every frame reaching it (passed on
/// unchanged).
///
/// Received frames are stamped with the port's receive time when the port
/// sets one (`Meta::rx_timestamp_ns`, taken to be on the [`Clock::global`]
/// clock), else the time of the pipeline iteration; transmitted frames with
/// the iteration's time. Both are turned into wall-clock time through the
/// global clock. A failing file never drops a packet: the failure is counted.
///
/// ```no_run
/// use tpa::port::memory::MemoryPort;
/// use tpa_stages::discard::Discard;
/// use tpa_stages::pcap::PcapCapture;
///
/// #[tpa::pipeline]
/// struct Captured {
///     port: MemoryPort,
///     /// Both directions, as tcpdump on the interface would see them.
///     #[observer]
///     capture: PcapCapture,
///     sink: Discard<tpa::buf::PoolBuf>,
/// }
///
/// let capture = PcapCapture::create("/tmp/responder.pcap").expect("create capture file");
/// ```
#[derive(Debug)]
pub struct PcapCapture<W: Write = BufWriter<File>> {
    writer: PcapWriter<W>,
    clock: &'static Clock,
    stats: PcapStats,
    last_error: Option<io::ErrorKind>,
}

impl PcapCapture<BufWriter<File>> {
    /// Creates (or truncates) the file at `path`, with nanosecond timestamps
    /// and whole frames (up to 256 KiB).
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        Self::new(file, TimestampPrecision::Nanos, 256 * 1024)
    }
}

impl<W: Write> PcapCapture<W> {
    /// A capture writing to `out`.
    pub fn new(out: W, precision: TimestampPrecision, snaplen: u32) -> io::Result<Self> {
        Ok(PcapCapture {
            writer: PcapWriter::new(out, precision, snaplen)?,
            clock: Clock::global(),
            stats: PcapStats::default(),
            last_error: None,
        })
    }

    /// Frames written and failed so far.
    pub fn stats(&self) -> PcapStats {
        self.stats
    }

    /// The kind of the last write error, if a write failed.
    pub fn last_error(&self) -> Option<io::ErrorKind> {
        self.last_error
    }

    /// Flushes buffered frames to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Appends `frame`, received (or processed) at `now_ns` of the global
    /// clock, counting a failure instead of returning it.
    pub fn record(&mut self, now_ns: u64, frame: &[u8]) {
        self.record_segments(now_ns, frame.len(), core::iter::once(frame));
    }

    /// Records a chained frame of `len` bytes (every segment, in order)
    /// seen at `now_ns`.
    fn record_segments<'a>(
        &mut self,
        now_ns: u64,
        len: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) {
        let unix_ns = self.clock.to_unix_ns(now_ns);
        match self.writer.write_segments(unix_ns, len, segments) {
            Ok(()) => self.stats.written += 1,
            Err(e) => {
                self.stats.failed += 1;
                self.last_error = Some(e.kind());
            }
        }
    }
}

impl<W: Write> Drop for PcapCapture<W> {
    fn drop(&mut self) {
        // Nothing can be reported from a drop; `flush` is there for callers
        // who want the error.
        let _ = self.writer.flush();
    }
}

impl<B: PacketBuf, W: Write> Observer<B> for PcapCapture<W> {
    #[inline]
    fn on_rx(&mut self, frame: &B, now_ns: u64) {
        let stamp = match frame.meta().rx_timestamp_ns {
            0 => now_ns,
            t => t,
        };
        self.record_segments(stamp, frame.total_len(), frame.segments());
    }

    #[inline]
    fn on_tx(&mut self, frame: &B, now_ns: u64) {
        // A reply built in place still carries the request's receive time.
        // A chained frame (headers, then a TCP payload shared from the
        // send queue) is recorded whole.
        self.record_segments(now_ns, frame.total_len(), frame.segments());
    }
}

impl<B: PacketBuf, W: Write, S> Stage<B, S> for PcapCapture<W> {
    type In = B;
    type Out = B;

    #[inline]
    fn process(&mut self, frame: B, cx: &mut Cx<'_, B, S>) -> Verdict<B> {
        let stamp = match frame.meta().rx_timestamp_ns {
            0 => cx.now_ns(),
            t => t,
        };
        self.record_segments(stamp, frame.total_len(), frame.segments());
        Verdict::Pass(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool, NOW_NS};
    use std::process::Command;

    fn test_frame(ether_type: [u8; 2], len: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![fill; len];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ether_type);
        f
    }

    /// Runs tshark over `path`, printing the given fields one line per frame.
    fn tshark(path: &Path, fields: &[&str]) -> Vec<String> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r")
            .arg(path)
            .args(["-T", "fields", "-E", "separator=,"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("tshark runs (apt-get install tshark)");
        assert!(
            out.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tpa-pcap-{}-{name}.pcap", std::process::id()))
    }

    #[test]
    fn tshark_reads_what_the_stage_captured() {
        let path = temp_path("stage");
        let frames = [
            test_frame([0x08, 0x06], 60, 0),
            test_frame([0x08, 0x00], 98, 0x45),
            test_frame([0x86, 0xdd], 1514, 0x60),
        ];
        {
            let mut capture = PcapCapture::create(&path).unwrap();
            for f in &frames {
                let verdict = with_cx(|cx| capture.process(frame(f), cx));
                // Passed on unchanged.
                let Verdict::Pass(out) = verdict else {
                    panic!("capture must pass frames on")
                };
                assert_eq!(out.data(), &f[..]);
            }
            assert_eq!(
                capture.stats(),
                PcapStats {
                    written: 3,
                    failed: 0
                }
            );
        } // dropped: flushed
        let lines = tshark(&path, &["frame.len", "eth.type", "frame.time_epoch"]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        let expected_types = ["0x0806", "0x0800", "0x86dd"];
        let unix_ns = Clock::global().to_unix_ns(NOW_NS);
        for ((line, f), ty) in lines.iter().zip(&frames).zip(expected_types) {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols[0], f.len().to_string());
            assert_eq!(cols[1], ty);
            let (secs, nanos) = cols[2].split_once('.').unwrap();
            assert_eq!(secs.parse::<u64>().unwrap(), unix_ns / 1_000_000_000);
            assert_eq!(nanos.parse::<u64>().unwrap(), unix_ns % 1_000_000_000);
        }
        std::fs::remove_file(&path).unwrap();
        pool().assert_whole();
    }

    #[test]
    fn a_chained_frame_is_recorded_whole() {
        use tpa::pipeline::Observer;
        let mut capture = PcapCapture::new(Vec::new(), TimestampPrecision::Nanos, 100).unwrap();
        let head = test_frame([0x08, 0x00], 54, 0x45);
        let mut chained = frame(&head);
        let mut payload = frame(&[0xa5; 80]);
        payload.trim_front(10).unwrap();
        assert!(chained.chain_shared(payload.share()).is_ok());
        Observer::on_tx(&mut capture, &chained, NOW_NS);
        drop(chained);
        let bytes = core::mem::take(&mut capture.writer.out);
        let record = &bytes[24..];
        // Captured 100 of 124 bytes (the snap length), headers then payload.
        assert_eq!(record[8..12], 100u32.to_le_bytes());
        assert_eq!(record[12..16], 124u32.to_le_bytes());
        assert_eq!(record[16..16 + 54], head[..]);
        assert_eq!(record[16 + 54..], [0xa5; 46]);
        pool().assert_whole();
    }

    #[test]
    fn microsecond_files_and_snaplen_read_back() {
        let path = temp_path("micros");
        {
            let file = BufWriter::new(File::create(&path).unwrap());
            let mut w = PcapWriter::new(file, TimestampPrecision::Micros, 64).unwrap();
            w.write_frame(1_700_000_000_123_456_789, &test_frame([0x08, 0x00], 100, 1))
                .unwrap();
            w.flush().unwrap();
        }
        let lines = tshark(&path, &["frame.len", "frame.cap_len", "frame.time_epoch"]);
        assert_eq!(lines, ["100,64,1700000000.123456000"]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn write_failures_are_counted_and_frames_still_pass() {
        /// Takes the file header, then reports a full disk.
        struct FullAfterHeader(usize);
        impl Write for FullAfterHeader {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 >= 24 {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
                }
                let n = b.len().min(24 - self.0);
                self.0 += n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut capture =
            PcapCapture::new(FullAfterHeader(0), TimestampPrecision::Nanos, 100).unwrap();
        let f = test_frame([0x08, 0x00], 60, 0);
        let verdict = with_cx(|cx| capture.process(frame(&f), cx));
        assert!(matches!(verdict, Verdict::Pass(_)));
        drop(verdict);
        assert_eq!(
            capture.stats(),
            PcapStats {
                written: 0,
                failed: 1
            }
        );
        assert_eq!(capture.last_error(), Some(io::ErrorKind::StorageFull));
        pool().assert_whole();
    }
}
