//! Opening a log: a file, `-` for standard input, `.gz` (gzip, also concatenated
//! members) and `.zst` (zstd) decompressed on the fly, read once in large blocks; how
//! many compressed bytes were read so far drives the progress bar.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Block size of every read.
const BUFFER: usize = 256 * 1024;

/// An open log.
pub struct Input {
    /// Its lines.
    pub reader: Box<dyn BufRead + Send>,
    /// Its size on disk, when known (not for standard input).
    pub size: Option<u64>,
    /// Bytes read from disk so far (compressed bytes for `.gz`/`.zst`).
    pub read: Arc<AtomicU64>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Counts the bytes its reader hands out.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` (`-`: standard input), decompressing by extension.
pub fn open(path: &str) -> io::Result<Input> {
    let read = Arc::new(AtomicU64::new(0));
    if path == "-" {
        let raw = Counting {
            inner: io::stdin(),
            read: Arc::clone(&read),
        };
        return Ok(Input {
            reader: Box::new(BufReader::with_capacity(BUFFER, raw)),
            size: None,
            read,
        });
    }
    let file = File::open(path)?;
    let size = file.metadata().ok().map(|m| m.len());
    let raw = BufReader::with_capacity(
        BUFFER,
        Counting {
            inner: file,
            read: Arc::clone(&read),
        },
    );
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let reader: Box<dyn BufRead + Send> = match ext {
        "gz" => Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        "zst" => Box::new(BufReader::with_capacity(
            BUFFER,
            zstd::stream::read::Decoder::with_buffer(raw)?,
        )),
        _ => Box::new(raw),
    };
    Ok(Input { reader, size, read })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn lines(input: Input) -> Vec<String> {
        input.reader.lines().map(Result::unwrap).collect()
    }

    #[test]
    fn plain_gzip_and_zstd() {
        let dir = std::env::temp_dir().join(format!("ratelab-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "a\nb\n";
        let plain = dir.join("log");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.join("log.gz");
        // Two gzip members, as `cat a.gz b.gz` or logrotate's appends make.
        let mut bytes = Vec::new();
        for part in ["a\n", "b\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            bytes.extend(e.finish().unwrap());
        }
        std::fs::write(&gz, bytes).unwrap();
        let zst = dir.join("log.zst");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 1).unwrap()).unwrap();
        for p in [&plain, &gz, &zst] {
            let input = open(p.to_str().unwrap()).unwrap();
            assert!(input.size.is_some_and(|s| s > 0));
            let read = Arc::clone(&input.read);
            assert_eq!(lines(input), ["a", "b"], "{}", p.display());
            assert_eq!(
                read.load(Ordering::Relaxed),
                std::fs::metadata(p).unwrap().len()
            );
        }
        assert!(open(dir.join("missing").to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
