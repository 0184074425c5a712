//! A dense row-major matrix of features.

use serde::{Deserialize, Serialize};

use crate::DetectError;

/// Rows of equal width, stored contiguously.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Builds a matrix from row-major `data` of width `cols`.
    pub fn new(cols: usize, data: Vec<f64>) -> Result<Self, DetectError> {
        if cols == 0 || !data.len().is_multiple_of(cols) {
            return Err(DetectError::Parameter {
                name: "data",
                reason: format!("{} values cannot form rows of width {cols}", data.len()),
            });
        }
        Ok(Matrix { cols, data })
    }

    /// Builds a matrix from rows; every row must have the same, non-zero width.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, DetectError> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(DetectError::Parameter {
                name: "data",
                reason: format!("row {i} has {} values, expected {cols}", r.len()),
            });
        }
        Matrix::new(cols, rows.concat())
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.data.len() / self.cols
    }

    /// Width of each row.
    pub fn n_cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// All rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f64]> + '_ {
        self.data.chunks_exact(self.cols)
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_indexes() {
        let m = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        assert_eq!((m.n_rows(), m.n_cols()), (2, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.rows().count(), 2);
        assert!(Matrix::from_rows(&[vec![1.0], vec![1.0, 2.0]]).is_err());
        assert!(Matrix::new(0, vec![]).is_err());
        assert!(Matrix::new(3, vec![1.0; 4]).is_err());
    }
}
