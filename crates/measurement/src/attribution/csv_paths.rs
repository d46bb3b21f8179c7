//! Reading path-aggregate exports (one row per path) for offline attribution.
//!
//! The format is the one path-analysis tools exchange, e.g. ChannelAttribution's sample data:
//! a header row, then `path,total_conversions,total_conversion_value,total_null` with paths
//! written `channel > channel > …`. Column names, the channel separator and the field delimiter
//! are configurable; by default the delimiter is sniffed from the header (`,`, `;`, tab or `|`)
//! because the public exports use both commas and semicolons.
//!
//! Rules, each failing with the 1-based line number where it applies:
//! - every configured column must be in the header (a column set to `None` is not read);
//! - channel names are trimmed; an empty one (`a >> b`, a trailing `>`) is an error;
//! - numbers must be finite and >= 0; an empty value or null cell reads as 0, an empty
//!   conversions cell is an error; a value without any conversion is an error;
//! - a row with zero conversions and zero nulls carries no weight in any model: it is skipped
//!   and counted in [`CsvPaths::skipped_rows`];
//! - identical paths on several rows are summed;
//! - [`PathLimits`] bounds the distinct channels and the touches per path.

use std::io::{BufRead, BufReader, Read};

use super::hashing::FxHashMap;
use super::path::{ChannelId, PathLimits, PathOutcome, PathSet, PathSetBuilder};
use crate::Result;
use crate::error::MeasurementError;

/// How to read a path-aggregate CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct PathCsvOptions {
    pub path_column: String,
    pub conversions_column: String,
    /// `None` when the file has no value column (every value is then 0).
    pub value_column: Option<String>,
    /// `None` when the file has no null column (only converting paths are then known).
    pub nulls_column: Option<String>,
    /// Between channels in a path, surrounding whitespace ignored.
    pub channel_separator: String,
    /// Field delimiter; `None` sniffs it from the header line.
    pub delimiter: Option<u8>,
    pub limits: PathLimits,
}

impl Default for PathCsvOptions {
    fn default() -> Self {
        Self {
            path_column: "path".into(),
            conversions_column: "total_conversions".into(),
            value_column: Some("total_conversion_value".into()),
            nulls_column: Some("total_null".into()),
            channel_separator: ">".into(),
            delimiter: None,
            limits: PathLimits::default(),
        }
    }
}

/// The paths read from a CSV and what happened to its rows.
#[derive(Debug, Clone)]
pub struct CsvPaths {
    pub paths: PathSet,
    /// Data rows read (the header excluded).
    pub rows: u64,
    /// Rows with zero conversions and zero nulls, skipped.
    pub skipped_rows: u64,
}

const DELIMITER_CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Reads a path-aggregate CSV from any reader, streaming.
pub fn read_paths_csv<R: Read>(input: R, options: &PathCsvOptions) -> Result<CsvPaths> {
    if options.channel_separator.trim().is_empty() {
        return Err(MeasurementError::invalid("the channel separator must not be empty or blank"));
    }
    let mut input = BufReader::with_capacity(1 << 16, input);
    let delimiter = match options.delimiter {
        Some(delimiter) => delimiter,
        None => sniff_delimiter(&mut input)?,
    };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).from_reader(input);
    let columns = Columns::locate(&mut reader, options)?;

    let mut builder = PathSetBuilder::with_limits(options.limits);
    // Names are trimmed anyway, so `>` and ` > ` split alike.
    let separator = options.channel_separator.trim().as_bytes();
    let mut interner = Interner::default();
    let mut record = csv::ByteRecord::new();
    let mut touches: Vec<ChannelId> = Vec::new();
    let mut rows = 0u64;
    let mut skipped_rows = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(csv_error(&error)),
        }
        rows += 1;
        let line = record.position().map_or(rows + 1, |position| position.line());
        let at_line = |message: String| MeasurementError::invalid(format!("line {line}: {message}"));

        let conversions =
            number(&record, columns.conversions, &options.conversions_column, false).map_err(at_line)?;
        let value = match (columns.value, &options.value_column) {
            (Some(index), Some(name)) => number(&record, index, name, true).map_err(at_line)?,
            _ => 0.0,
        };
        let nulls = match (columns.nulls, &options.nulls_column) {
            (Some(index), Some(name)) => number(&record, index, name, true).map_err(at_line)?,
            _ => 0.0,
        };
        let outcome = PathOutcome::new(conversions, value, nulls);

        let path = record.get(columns.path).unwrap_or_default();
        if std::str::from_utf8(path).is_err() {
            return Err(at_line("the path is not valid UTF-8".into()));
        }
        if path.trim_ascii().is_empty() {
            return Err(at_line("the path is empty".into()));
        }
        if conversions == 0.0 && nulls == 0.0 && value == 0.0 {
            skipped_rows += 1;
            continue;
        }
        touches.clear();
        let mut rest = path;
        loop {
            let (name, next) = match find(rest, separator) {
                Some(at) => (&rest[..at], Some(&rest[at + separator.len()..])),
                None => (rest, None),
            };
            if touches.len() == options.limits.max_path_length {
                return Err(at_line(format!(
                    "the path has more than {} touches, the limit",
                    options.limits.max_path_length
                )));
            }
            touches.push(
                interner
                    .intern(name, &mut builder)
                    .map_err(|error| at_line(format!("{error} in path `{}`", excerpt(path))))?,
            );
            match next {
                Some(next) => rest = next,
                None => break,
            }
        }
        builder.add_path(&touches, outcome).map_err(|error| at_line(error.to_string()))?;
    }
    if rows == 0 {
        return Err(MeasurementError::invalid("the file has no path rows after its header"));
    }
    Ok(CsvPaths { paths: builder.build(), rows, skipped_rows })
}

/// Channel ids by the raw bytes of their (ASCII-trimmed) name, in front of the builder's
/// interning: no allocation and no UTF-8 work for a name already seen. Names of up to 15 bytes
/// (most channel names) are looked up by value, packed with their length in a `u128`, which
/// spares hashing and comparing byte strings for millions of touches.
#[derive(Default)]
struct Interner {
    short: FxHashMap<u128, ChannelId>,
    long: FxHashMap<Box<[u8]>, ChannelId>,
}

impl Interner {
    #[inline]
    fn intern(&mut self, name: &[u8], builder: &mut PathSetBuilder) -> Result<ChannelId> {
        let name = name.trim_ascii();
        let packed = pack(name);
        let known = match packed {
            Some(key) => self.short.get(&key),
            None => self.long.get(name),
        };
        if let Some(&id) = known {
            return Ok(id);
        }
        // Whole-path UTF-8 was checked and the cut is at ASCII bytes, so this cannot fail.
        let text = std::str::from_utf8(name).map_err(|_| MeasurementError::invalid("invalid UTF-8"))?;
        if text.trim().is_empty() {
            return Err(MeasurementError::invalid("empty channel name"));
        }
        let id = builder.channel(text)?;
        match packed {
            Some(key) => self.short.insert(key, id),
            None => self.long.insert(name.into(), id),
        };
        Ok(id)
    }
}

/// A name of up to 15 bytes as one number: its bytes, then its length in the top byte. Built
/// from overlapping word reads, not a byte copy into a buffer (whose read back stalls).
#[inline]
fn pack(name: &[u8]) -> Option<u128> {
    let len = name.len();
    let word = |bytes: &[u8]| -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    let half = |bytes: &[u8]| -> u64 {
        let mut half = [0u8; 4];
        half.copy_from_slice(bytes);
        u64::from(u32::from_le_bytes(half))
    };
    let (low, high) = match len {
        16.. => return None,
        8 => (word(&name[..8]), 0),
        9..=15 => (word(&name[..8]), word(&name[len - 8..]) >> ((16 - len) * 8)),
        4..=7 => (half(&name[..4]) | half(&name[len - 4..]) << ((len - 4) * 8), 0),
        _ => (name.iter().enumerate().fold(0, |low, (at, &byte)| low | u64::from(byte) << (8 * at)), 0),
    };
    Some(u128::from(low) | u128::from(high | (len as u64) << 56) << 64)
}

/// The start of a path for an error message: a path may hold a thousand touches.
fn excerpt(path: &[u8]) -> String {
    const SHOWN: usize = 120;
    let text = String::from_utf8_lossy(path);
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[inline]
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [byte] => haystack.iter().position(|candidate| candidate == byte),
        _ => haystack.windows(needle.len()).position(|window| window == needle),
    }
}

struct Columns {
    path: usize,
    conversions: usize,
    value: Option<usize>,
    nulls: Option<usize>,
}

impl Columns {
    fn locate<R: Read>(reader: &mut csv::Reader<R>, options: &PathCsvOptions) -> Result<Self> {
        let header = reader.byte_headers().map_err(|error| csv_error(&error))?.clone();
        let names: Vec<String> = header
            .iter()
            .map(|name| String::from_utf8_lossy(name).trim().trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        if names.iter().all(String::is_empty) {
            return Err(MeasurementError::invalid("line 1: the file has no header row"));
        }
        let find = |wanted: &str| -> Result<usize> {
            names.iter().position(|name| name.eq_ignore_ascii_case(wanted.trim())).ok_or_else(|| {
                MeasurementError::invalid(format!(
                    "line 1: no column `{wanted}` in the header (columns: {})",
                    names.join(", ")
                ))
            })
        };
        Ok(Self {
            path: find(&options.path_column)?,
            conversions: find(&options.conversions_column)?,
            value: options.value_column.as_deref().map(find).transpose()?,
            nulls: options.nulls_column.as_deref().map(find).transpose()?,
        })
    }
}

/// Picks the candidate delimiter that occurs most often in the header line.
fn sniff_delimiter<R: Read>(input: &mut BufReader<R>) -> Result<u8> {
    let buffer =
        input.fill_buf().map_err(|error| MeasurementError::invalid(format!("cannot read: {error}")))?;
    let header = buffer.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let mut best = (0usize, b',');
    for candidate in DELIMITER_CANDIDATES {
        let count = header.iter().filter(|&&byte| byte == candidate).count();
        if count > best.0 {
            best = (count, candidate);
        }
    }
    Ok(best.1)
}

fn number(record: &csv::ByteRecord, index: usize, column: &str, empty_is_zero: bool) -> Result<f64, String> {
    let raw = record.get(index).unwrap_or_default();
    // Counts are nearly always small integers: read them without the general float parser.
    if !raw.is_empty() && raw.len() <= 15 && raw.iter().all(u8::is_ascii_digit) {
        let integer = raw.iter().fold(0u64, |integer, &digit| integer * 10 + u64::from(digit - b'0'));
        return Ok(integer as f64);
    }
    let text = std::str::from_utf8(raw).map_err(|_| format!("`{column}` is not valid UTF-8"))?.trim();
    if text.is_empty() {
        return if empty_is_zero { Ok(0.0) } else { Err(format!("`{column}` is empty")) };
    }
    let number: f64 = text.parse().map_err(|_| format!("`{column}` is not a number: `{text}`"))?;
    if !number.is_finite() || number < 0.0 {
        return Err(format!("`{column}` must be a finite number >= 0, got `{text}`"));
    }
    Ok(number)
}

fn csv_error(error: &csv::Error) -> MeasurementError {
    let line = error.position().map(csv::Position::line);
    let detail = match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_owned(),
        csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
        _ => error.to_string(),
    };
    match line {
        Some(line) => MeasurementError::invalid(format!("line {line}: {detail}")),
        None => MeasurementError::invalid(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<CsvPaths> {
        read_paths_csv(text.as_bytes(), &PathCsvOptions::default())
    }

    fn message(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_common_format_and_sums_identical_paths() {
        let csv = "path,total_conversions,total_conversion_value,total_null\n\
                   a > b,1,10.5,2\n\
                   c,0,0,3\n\
                   a>b ,2,4.5,0\n\
                   \"b > a\",1,1,1\n";
        let read = read(csv).unwrap();
        assert_eq!(read.rows, 4);
        assert_eq!(read.skipped_rows, 0);
        let paths = read.paths;
        assert_eq!(paths.channels(), ["a", "b", "c"]);
        assert_eq!(paths.len(), 3);
        assert_eq!(paths.path(0).unwrap().outcome, PathOutcome::new(3.0, 15.0, 2.0));
        assert_eq!(paths.totals(), PathOutcome::new(4.0, 16.0, 6.0));
    }

    #[test]
    fn sniffs_semicolons_and_honours_custom_columns_and_separator() {
        let semicolons = "path;total_conversions;total_conversion_value;total_null\nx > y;1;2;0\n";
        assert_eq!(read(semicolons).unwrap().paths.channels(), ["x", "y"]);

        let options = PathCsvOptions {
            path_column: "journey".into(),
            conversions_column: "conv".into(),
            value_column: None,
            nulls_column: Some("lost".into()),
            channel_separator: "->".into(),
            delimiter: Some(b'\t'),
            ..PathCsvOptions::default()
        };
        let tabs = "JOURNEY\tconv\tlost\nmail -> web -> mail\t2\t1\n";
        let paths = read_paths_csv(tabs.as_bytes(), &options).unwrap().paths;
        assert_eq!(paths.channels(), ["mail", "web"]);
        assert_eq!(paths.path(0).unwrap().touches, [0, 1, 0]);
        assert_eq!(paths.totals(), PathOutcome::new(2.0, 0.0, 1.0));
    }

    #[test]
    fn tolerates_a_byte_order_mark_crlf_line_ends_and_decimal_counts() {
        let csv = "\u{feff}path,total_conversions,total_conversion_value,total_null\r\n\
                   a > b,1.5,3.25,0.5\r\n";
        let paths = read(csv).unwrap().paths;
        assert_eq!(paths.totals(), PathOutcome::new(1.5, 3.25, 0.5));
    }

    #[test]
    fn rows_without_weight_are_skipped_and_counted() {
        let read =
            read("path,total_conversions,total_conversion_value,total_null\na,0,0,0\nb,1,1,0\n").unwrap();
        assert_eq!((read.rows, read.skipped_rows), (2, 1));
        assert_eq!(read.paths.len(), 1);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        const HEADER: &str = "path,total_conversions,total_conversion_value,total_null\n";
        let cases = [
            ("a > > b,1,1,0", "line 2: empty channel name"),
            ("a >,1,1,0", "line 2: empty channel name"),
            (" ,1,1,0", "line 2: the path is empty"),
            ("a,-1,0,0", "line 2: `total_conversions` must be a finite number >= 0"),
            ("a,1,NaN,0", "line 2: `total_conversion_value` must be a finite number"),
            ("a,1,inf,0", "line 2: `total_conversion_value` must be a finite number"),
            ("a,x,1,0", "line 2: `total_conversions` is not a number: `x`"),
            ("a,,1,0", "line 2: `total_conversions` is empty"),
            ("a,0,5,1", "line 2: conversion value 5 without any conversion"),
            ("a,1,1", "line 2: 3 fields where the header has 4"),
        ];
        for (row, expected) in cases {
            let error = message(&format!("{HEADER}b,1,1,0\n{row}\n"));
            let expected = expected.replace("line 2", "line 3");
            assert!(error.contains(&expected), "{row:?}: {error:?} should contain {expected:?}");
        }
        let error = message("path,conversions\na,1\n");
        assert!(
            error.contains("no column `total_conversions`") && error.contains("path, conversions"),
            "{error}"
        );
        assert!(message("").contains("no header"), "{}", message(""));
        assert!(message(HEADER).contains("no path rows"));
    }

    #[test]
    fn short_names_pack_to_distinct_keys() {
        let names: Vec<String> = (0..=15).map(|len| "abcdefghijklmnop"[..len].to_owned()).collect();
        let mut keys: Vec<u128> = names.iter().map(|name| pack(name.as_bytes()).unwrap()).collect();
        for (len, key) in keys.iter().enumerate() {
            let bytes = key.to_le_bytes();
            assert_eq!(&bytes[..len], &names[len].as_bytes()[..len]);
            assert!(bytes[len..15].iter().all(|&byte| byte == 0), "{len}: {bytes:?}");
            assert_eq!(usize::from(bytes[15]), len);
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 16);
        assert_eq!(pack(b"abcdefghijklmnop"), None);
    }

    #[test]
    fn limits_are_enforced_with_line_numbers() {
        let options = PathCsvOptions {
            limits: PathLimits { max_channels: 2, max_path_length: 3 },
            ..PathCsvOptions::default()
        };
        let header = "path,total_conversions,total_conversion_value,total_null\n";
        let too_long = format!("{header}a > b > a > b,1,0,0\n");
        let error = read_paths_csv(too_long.as_bytes(), &options).unwrap_err().to_string();
        assert!(error.contains("line 2") && error.contains("more than 3 touches"), "{error}");
        let too_many = format!("{header}a > b,1,0,0\nc,1,0,0\n");
        let error = read_paths_csv(too_many.as_bytes(), &options).unwrap_err().to_string();
        assert!(error.contains("line 3") && error.contains("limit is 2"), "{error}");
    }
}
