//! A stored vector and the model that made it.
//!
//! Vectors from different models (or versions of one) are not comparable, so every stored vector
//! carries its model's identifier and is only used when that matches the current embedder.

/// Unit-length vector of a text, tagged with the model that made it.
#[derive(Clone, PartialEq)]
pub struct Embedding {
    pub model: String,
    pub vector: Vec<f32>,
}

impl std::fmt::Debug for Embedding {
    // Hundreds of floats help nobody reading a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedding({}, {} dims)", self.model, self.vector.len())
    }
}

impl Embedding {
    pub fn new(model: impl Into<String>, vector: Vec<f32>) -> Self {
        Self {
            model: model.into(),
            vector,
        }
    }

    /// The vector when it was made by `model`.
    pub fn for_model(&self, model: &str) -> Option<&[f32]> {
        (self.model == model).then_some(self.vector.as_slice())
    }

    /// Little-endian `f32`s, the stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.vector.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The inverse of [`Embedding::to_bytes`]; `None` when the length is not a whole number of
    /// floats.
    pub fn from_bytes(model: impl Into<String>, bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(4) {
            return None;
        }
        let vector = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Self::new(model, vector))
    }
}

/// Dot product; the cosine similarity of two unit vectors. Mismatched lengths compare as 0.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_reject_ragged_input() {
        let e = Embedding::new("m", vec![0.5, -1.25, 3.0]);
        assert_eq!(Embedding::from_bytes("m", &e.to_bytes()), Some(e.clone()));
        assert_eq!(Embedding::from_bytes("m", &[1, 2, 3]), None);
        assert_eq!(e.for_model("m"), Some(&[0.5, -1.25, 3.0][..]));
        assert_eq!(e.for_model("other"), None);
    }

    #[test]
    fn cosine_of_unit_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }
}
