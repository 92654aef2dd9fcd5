//! Splitting an insert into batches: each batch is one all-or-nothing
//! INSERT, and row `r` of the input gets id `start_id + r`.

use std::ops::Range;

/// One INSERT: rows `rows` of the input, ids from `first_id` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// 0-based position among the batches.
    pub index: usize,
    pub rows: Range<usize>,
    pub first_id: u64,
}

impl Batch {
    /// The ids of this batch's rows, in row order.
    pub fn ids(&self) -> Vec<u64> {
        (self.first_id..)
            .take(self.rows.len())
            .collect::<Vec<u64>>()
    }

    /// Last id of the batch (the batch is never empty).
    pub fn last_id(&self) -> u64 {
        self.first_id + (self.rows.len() as u64 - 1)
    }
}

/// The batches of `batch` rows (the last may be shorter) covering `rows`
/// rows, or why the ids would not fit in a u64.
pub fn plan(rows: usize, batch: usize, start_id: u64) -> Result<Vec<Batch>, String> {
    assert!(batch > 0, "batch size is checked by the caller");
    if rows > 0 && start_id.checked_add(rows as u64 - 1).is_none() {
        return Err(format!(
            "--start-id {start_id}: the ids of {rows} rows would go past {}",
            u64::MAX
        ));
    }
    Ok((0..rows)
        .step_by(batch)
        .enumerate()
        .map(|(index, first)| Batch {
            index,
            rows: first..(first + batch).min(rows),
            first_id: start_id + first as u64,
        })
        .collect())
}

/// `a..b` as printed for inclusive ranges of rows and ids.
pub fn span(first: u64, last: u64) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}..{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rows_into_batches_with_ids_from_start_id() {
        let batches = plan(25, 10, 100).unwrap();
        assert_eq!(
            batches,
            [
                Batch {
                    index: 0,
                    rows: 0..10,
                    first_id: 100
                },
                Batch {
                    index: 1,
                    rows: 10..20,
                    first_id: 110
                },
                Batch {
                    index: 2,
                    rows: 20..25,
                    first_id: 120
                },
            ]
        );
        assert_eq!(batches[2].ids(), [120, 121, 122, 123, 124]);
        assert_eq!(batches[2].last_id(), 124);
    }

    #[test]
    fn exact_multiples_and_single_batches() {
        let b = plan(20, 10, 0).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].rows, 10..20);
        let b = plan(3, 10_000, 7).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].ids(), [7, 8, 9]);
        assert!(plan(0, 10, 0).unwrap().is_empty());
    }

    #[test]
    fn ids_must_fit_in_u64() {
        let b = plan(2, 1, u64::MAX - 1).unwrap();
        assert_eq!(b[1].first_id, u64::MAX);
        assert_eq!(
            plan(3, 1, u64::MAX - 1).unwrap_err(),
            format!(
                "--start-id {}: the ids of 3 rows would go past {}",
                u64::MAX - 1,
                u64::MAX
            )
        );
    }

    #[test]
    fn spans() {
        assert_eq!(span(0, 399_999), "0..399999");
        assert_eq!(span(5, 5), "5");
    }
}
