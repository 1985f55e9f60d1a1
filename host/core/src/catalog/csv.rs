//! A reader for the embedded CSV files.
//!
//! No field in them contains a comma, quote or line break, so a line split on
//! `,` is a row. A quote anywhere is rejected rather than misread, so a file
//! that starts quoting fields fails the parse test instead of shifting
//! columns.

use std::fmt;
use std::str::FromStr;

/// A malformed embedded file. Always a bug: the data ships inside the binary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DataError {
    pub file: &'static str,
    pub line: usize,
    pub message: String,
}

/// One data row, with its fields in the order the caller asked for.
pub(super) struct Row<'a, const N: usize> {
    pub file: &'static str,
    pub line: usize,
    pub fields: [&'a str; N],
}

impl<const N: usize> Row<'_, N> {
    pub fn error(&self, message: impl fmt::Display) -> DataError {
        DataError {
            file: self.file,
            line: self.line,
            message: message.to_string(),
        }
    }

    /// Field `i` parsed, naming the column on failure.
    pub fn parse<T: FromStr>(&self, i: usize, column: &str) -> Result<T, DataError> {
        let text = self.fields[i];
        text.parse()
            .map_err(|_| self.error(format_args!("column `{column}`: cannot read `{text}`")))
    }
}

/// Reads `text`, whose first line names the columns, and returns the
/// `columns` asked for from every data row. Every row must have as many
/// fields as the header.
pub(super) fn read<'a, const N: usize>(
    file: &'static str,
    text: &'a str,
    columns: [&str; N],
) -> Result<Vec<Row<'a, N>>, DataError> {
    let error = |line, message: String| DataError {
        file,
        line,
        message,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines
        .next()
        .ok_or_else(|| error(1, "empty file".to_string()))?;
    let header: Vec<&str> = header.split(',').collect();
    let mut index = [0; N];
    for (slot, column) in index.iter_mut().zip(columns) {
        *slot = header
            .iter()
            .position(|h| *h == column)
            .ok_or_else(|| error(1, format!("no column `{column}`")))?;
    }
    let mut rows = Vec::new();
    let mut fields = Vec::with_capacity(header.len());
    for (line, text) in lines {
        if text.is_empty() {
            continue;
        }
        if text.contains('"') {
            return Err(error(line, "quoted fields are not supported".to_string()));
        }
        fields.clear();
        fields.extend(text.split(','));
        if fields.len() != header.len() {
            return Err(error(
                line,
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        rows.push(Row {
            file,
            line,
            fields: index.map(|i| fields[i]),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_named_columns_and_rejects_malformed_rows() {
        let rows = read("t.csv", "a,b,c\n1,2,3\n\n4,5,6\n", ["c", "a"]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].fields, ["6", "4"]);
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[0].parse::<u32>(0, "c").unwrap(), 3);

        let short = read("t.csv", "a,b\n1\n", ["a"]).err().unwrap();
        assert_eq!(short.to_string(), "t.csv:2: 1 fields, the header has 2");
        assert!(read("t.csv", "a,b\n\"1,2\",3\n", ["a"]).is_err());
        assert!(read("t.csv", "a,b\n1,2\n", ["z"]).is_err());
        let bad = read("t.csv", "a\nx\n", ["a"]).unwrap();
        assert_eq!(
            bad[0].parse::<u32>(0, "a").unwrap_err().to_string(),
            "t.csv:2: column `a`: cannot read `x`"
        );
    }
}
