//! `MiniLm`: all-MiniLM-L6-v2 run on the CPU with candle, mean-pooled and L2-normalised exactly as
//! sentence-transformers does it, so its vectors compare with cosine similarity as a dot product.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use crate::Embedder;
use crate::error::EmbedError;
use crate::model_files::{CONFIG, ModelFiles, SAFETENSORS, TOKENIZER};

/// Vector length of all-MiniLM-L6-v2.
pub const MINILM_DIMENSIONS: usize = 384;

/// Longest input, in tokens, before truncation: sentence-transformers' `max_seq_length` for this
/// model. The shipped tokenizer truncates at 128; it was trained at 128 but sentence-transformers
/// runs it at 256, and results must match theirs.
pub const MINILM_MAX_TOKENS: usize = 256;

/// Names the vectors this model makes: the model, the first 12 hex digits of its weights' SHA-256,
/// and the truncation length. Stored embeddings with another identifier must be re-made.
pub const MINILM_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2@53aa51172d14/max256";

/// How many texts run through the network together. Texts are sorted by length first, so a batch
/// pads only to the longest of similar-length texts.
const BATCH_SIZE: usize = 32;

/// all-MiniLM-L6-v2, loaded and ready. Cheap to share (`Arc<MiniLm>`); `embed` takes `&self` and
/// may run from several threads at once.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MiniLm")
            .field("model_id", &MINILM_MODEL_ID)
            .finish_non_exhaustive()
    }
}

impl MiniLm {
    /// Loads the installed model, checking every file's SHA-256 first (about 90 MB of reading,
    /// once at start-up), so damaged weights are refused instead of giving wrong vectors.
    pub fn load(files: &ModelFiles) -> Result<Self, EmbedError> {
        let config_bytes = files.read_verified(CONFIG)?;
        let config: Config =
            serde_json::from_slice(&config_bytes).map_err(|source| EmbedError::Config {
                path: files.config_path(),
                source,
            })?;
        let tokenizer_bytes = files.read_verified(TOKENIZER)?;
        let tokenizer = configure_tokenizer(
            Tokenizer::from_bytes(&tokenizer_bytes).map_err(EmbedError::tokenizer)?,
        )?;
        let weights = files.read_verified(SAFETENSORS)?;
        let device = Device::Cpu;
        let variables = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(variables, &config)?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// How many tokens `text` becomes, special tokens included and after truncation: what one
    /// query costs the network. Nothing pads it, so a short query stays short.
    pub fn token_count(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(EmbedError::tokenizer)?;
        Ok(encoding.len())
    }

    /// Embeds texts that go through the network as one padded batch.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(EmbedError::tokenizer)?;
        let batch = encodings.len();
        let length = encodings.first().map_or(0, |encoding| encoding.len());

        let mut ids = Vec::with_capacity(batch * length);
        let mut mask = Vec::with_capacity(batch * length);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (batch, length), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch, length), &self.device)?;
        let token_types = ids.zeros_like()?;

        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;

        // Mean over real tokens only: padding positions are multiplied by a mask of zero.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

impl Embedder for MiniLm {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }

    fn dimensions(&self) -> usize {
        MINILM_DIMENSIONS
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Sort by length (bytes are a good enough stand-in for tokens) so each batch pads little,
        // then put the vectors back in the caller's order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&index| texts[index].len());

        let mut vectors = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&str> = chunk.iter().map(|&index| texts[index]).collect();
            for (&index, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }
}

/// The shipped tokenizer pads every input to 128 tokens and truncates at 128. Pad a batch only to
/// its longest member instead (a short query then costs only its own tokens), and truncate where
/// sentence-transformers does.
fn configure_tokenizer(mut tokenizer: Tokenizer) -> Result<Tokenizer, EmbedError> {
    let (pad_id, pad_type_id, pad_token) = match tokenizer.get_padding() {
        Some(padding) => (
            padding.pad_id,
            padding.pad_type_id,
            padding.pad_token.clone(),
        ),
        None => (0, 0, "[PAD]".to_owned()),
    };
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        direction: PaddingDirection::Right,
        pad_to_multiple_of: None,
        pad_id,
        pad_type_id,
        pad_token,
    }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: MINILM_MAX_TOKENS,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(EmbedError::tokenizer)?;
    Ok(tokenizer)
}
