//! A push CSV parser: bytes go in as they arrive from the network, complete records come out,
//! and only the record being read is held in memory, so a file of any length streams through.
//! The parsing itself is `csv-core`'s (RFC 4180 with the usual leniencies: quoted fields with
//! embedded delimiters and newlines, doubled quotes, CRLF or LF, blank lines skipped).

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

/// Longest record accepted; a longer one is reported as an error and skipped.
pub(crate) const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Most fields in one record.
pub(crate) const MAX_FIELDS: usize = 512;

/// One record, or why it could not be read. `row` counts records as a spreadsheet numbers its
/// rows: the header is row 1 (blank lines are skipped and not counted).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CsvRecord {
    Fields { row: u64, fields: Vec<String> },
    TooLong { row: u64 },
    NotUtf8 { row: u64 },
}

pub(crate) struct CsvStream {
    reader: Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
    out_len: usize,
    ends_len: usize,
    /// The current record outgrew the limits: its bytes are being skipped.
    oversized: bool,
    rows: u64,
    /// The byte-order mark spreadsheet programs put in front of UTF-8 files is dropped.
    at_start: bool,
    bom: Vec<u8>,
}

impl CsvStream {
    pub fn new(delimiter: u8) -> Self {
        Self {
            reader: ReaderBuilder::new().delimiter(delimiter).build(),
            output: vec![0; 4096],
            ends: vec![0; 32],
            out_len: 0,
            ends_len: 0,
            oversized: false,
            rows: 0,
            at_start: true,
            bom: Vec::new(),
        }
    }

    /// Parses `input` and hands every record it completes to `emit`.
    pub fn feed(&mut self, input: &[u8], emit: &mut impl FnMut(CsvRecord)) {
        if self.at_start {
            // The mark may arrive split across chunks: hold up to three bytes until decided.
            self.bom.extend_from_slice(input);
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.bom.len() < BOM.len() && BOM.starts_with(&self.bom) {
                return;
            }
            self.at_start = false;
            let held = std::mem::take(&mut self.bom);
            let rest = held.strip_prefix(BOM).unwrap_or(&held);
            self.parse(rest, emit);
            return;
        }
        if !input.is_empty() {
            self.parse(input, emit);
        }
    }

    /// Signals the end of the input; a last record without a final newline is emitted.
    pub fn finish(&mut self, emit: &mut impl FnMut(CsvRecord)) {
        if self.at_start {
            self.at_start = false;
            let held = std::mem::take(&mut self.bom);
            self.parse(&held, emit);
        }
        // An empty input tells csv-core the data has ended.
        self.parse(&[], emit);
    }

    fn parse(&mut self, mut input: &[u8], emit: &mut impl FnMut(CsvRecord)) {
        loop {
            let (result, nin, nout, nends) = self.reader.read_record(
                input,
                &mut self.output[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            input = &input[nin..];
            self.out_len += nout;
            self.ends_len += nends;
            match result {
                // All of this chunk is consumed (at the end, csv-core answers `End` instead).
                ReadRecordResult::InputEmpty => return,
                ReadRecordResult::OutputFull => self.grow_output(),
                ReadRecordResult::OutputEndsFull => self.grow_ends(),
                ReadRecordResult::Record => emit(self.take_record()),
                ReadRecordResult::End => return,
            }
        }
    }

    fn grow_output(&mut self) {
        if self.output.len() >= MAX_RECORD_BYTES {
            // Keep parsing to find where the record ends, but drop its bytes.
            self.oversized = true;
            self.out_len = 0;
        } else {
            let size = (self.output.len() * 2).min(MAX_RECORD_BYTES);
            self.output.resize(size, 0);
        }
    }

    fn grow_ends(&mut self) {
        if self.ends.len() >= MAX_FIELDS {
            self.oversized = true;
            self.ends_len = 0;
        } else {
            let size = (self.ends.len() * 2).min(MAX_FIELDS);
            self.ends.resize(size, 0);
        }
    }

    fn take_record(&mut self) -> CsvRecord {
        self.rows += 1;
        let row = self.rows;
        let (out_len, ends_len, oversized) = (self.out_len, self.ends_len, self.oversized);
        self.out_len = 0;
        self.ends_len = 0;
        self.oversized = false;
        if oversized {
            return CsvRecord::TooLong { row };
        }
        let mut fields = Vec::with_capacity(ends_len);
        let mut start = 0;
        for &end in &self.ends[..ends_len] {
            let end = end.min(out_len);
            match std::str::from_utf8(&self.output[start..end]) {
                Ok(text) => fields.push(text.to_owned()),
                Err(_) => return CsvRecord::NotUtf8 { row },
            }
            start = end;
        }
        CsvRecord::Fields { row, fields }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_chunks(data: &[u8], chunk: usize) -> Vec<CsvRecord> {
        let mut stream = CsvStream::new(b',');
        let mut records = Vec::new();
        for piece in data.chunks(chunk) {
            stream.feed(piece, &mut |r| records.push(r));
        }
        stream.finish(&mut |r| records.push(r));
        records
    }

    fn fields(row: u64, values: &[&str]) -> CsvRecord {
        CsvRecord::Fields { row, fields: values.iter().map(|v| (*v).to_owned()).collect() }
    }

    #[test]
    fn records_come_out_whole_whatever_the_chunk_size() {
        let data = "\u{feff}email,name,note\r\na@x.io,\"Lovelace, Ada\",\"two\nlines\"\n\nb@x.io,Bob,\"say \"\"hi\"\"\"";
        let expected = vec![
            fields(1, &["email", "name", "note"]),
            fields(2, &["a@x.io", "Lovelace, Ada", "two\nlines"]),
            fields(3, &["b@x.io", "Bob", "say \"hi\""]),
        ];
        for chunk in [1, 2, 3, 7, 1000] {
            let records = parse_in_chunks(data.as_bytes(), chunk);
            assert_eq!(records, expected, "chunk {chunk}");
        }
    }

    #[test]
    fn an_oversized_record_is_reported_and_the_next_one_still_reads() {
        let mut data = String::from("a,b\n");
        data.push_str(&"x".repeat(MAX_RECORD_BYTES + 10));
        data.push_str(",y\nlast,row\n");
        let records = parse_in_chunks(data.as_bytes(), 8192);
        assert_eq!(records.len(), 3);
        assert_eq!(records[1], CsvRecord::TooLong { row: 2 });
        assert_eq!(records[2], fields(3, &["last", "row"]));
        let wide = format!("a\n{}\nok\n", ",".repeat(MAX_FIELDS + 5));
        let records = parse_in_chunks(wide.as_bytes(), 100);
        assert_eq!(records[1], CsvRecord::TooLong { row: 2 });
        assert_eq!(records[2], fields(3, &["ok"]));
    }

    #[test]
    fn invalid_utf8_is_a_row_error_not_a_failure() {
        let records = parse_in_chunks(b"a,b\n\xff\xfe,x\nok,1\n", 3);
        assert_eq!(records[1], CsvRecord::NotUtf8 { row: 2 });
        assert_eq!(records[2], fields(3, &["ok", "1"]));
    }

    #[test]
    fn semicolons_for_european_spreadsheets() {
        let mut stream = CsvStream::new(b';');
        let mut records = Vec::new();
        stream.feed(b"email;age\na@x.io;42", &mut |r| records.push(r));
        stream.finish(&mut |r| records.push(r));
        assert_eq!(records, vec![fields(1, &["email", "age"]), fields(2, &["a@x.io", "42"])]);
    }
}
