//! `OpenAiChat`: `LanguageModel` over an OpenAI-compatible `POST /chat/completions`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LanguageModel;
use crate::endpoint::{Endpoint, connect_timeout};
use crate::error::{
    CallProblem, LlmError, Service, malformed, status_message, transport_detail, transport_problem,
};

/// How long one completion may take unless the endpoint says otherwise.
pub const DEFAULT_CHAT_TIMEOUT: Duration = Duration::from_secs(20);

/// A chat model behind an OpenAI-compatible service, asked at temperature 0.
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    http: reqwest::Client,
    endpoint: Endpoint,
    /// `{base}/chat/completions`.
    url: String,
    model: String,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [ChatMessage<'a>; 2],
    temperature: f32,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
}

#[derive(Deserialize)]
struct AnswerMessage {
    content: Option<String>,
}

impl OpenAiChat {
    /// Sets up the client; nothing is called until `complete`.
    pub fn new(endpoint: Endpoint, model: &str) -> Result<Self, LlmError> {
        let timeout = endpoint.timeout_or(DEFAULT_CHAT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout(timeout))
            .build()
            .map_err(|error| LlmError::Client {
                detail: transport_detail(&error),
            })?;
        let url = endpoint.operation_url("chat/completions");
        Ok(Self {
            http,
            endpoint,
            url,
            model: model.to_owned(),
        })
    }

    /// The model name sent with every call.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The URL every call goes to, `{base}/chat/completions`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn failure(&self, problem: CallProblem) -> LlmError {
        LlmError::call(Service::Chat, &self.url, problem)
    }
}

#[async_trait::async_trait]
impl LanguageModel for OpenAiChat {
    async fn complete(&self, system: &str, user: &str) -> Result<String, LlmError> {
        let timeout = self.endpoint.timeout_or(DEFAULT_CHAT_TIMEOUT);
        let mut request = self.http.post(&self.url).json(&ChatRequest {
            model: &self.model,
            messages: [
                ChatMessage {
                    role: "system",
                    content: system,
                },
                ChatMessage {
                    role: "user",
                    content: user,
                },
            ],
            temperature: 0.0,
        });
        if let Some(key) = self.endpoint.api_key() {
            // `bearer_auth` marks the header sensitive, so it is left out of reqwest's own logs.
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.failure(transport_problem(&error, timeout)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.failure(transport_problem(&error, timeout)))?;
        if !status.is_success() {
            return Err(self.failure(CallProblem::Status {
                status: status.as_u16(),
                message: status_message(&body),
            }));
        }
        let answer: ChatResponse = serde_json::from_slice(&body)
            .map_err(|error| self.failure(malformed(&error, &body)))?;
        answer
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .filter(|content| !content.trim().is_empty())
            .ok_or_else(|| self.failure(CallProblem::EmptyAnswer))
    }
}
