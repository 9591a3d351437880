//! ApiVersions: the table of supported APIs, always answered.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::request::{RequestContext, SUPPORTED_APIS};

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS.iter().map(|(key, min, max)| ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max)).collect()
}

pub fn handle(ctx: &RequestContext<'_>, request: ApiVersionsRequest) -> ApiVersionsResponse {
    // KIP-511: from v3 the client names itself, and Apache Kafka refuses
    // names and versions outside its pattern.
    if ctx.api_version >= 3 && !(valid_software_field(&request.client_software_name) && valid_software_field(&request.client_software_version)) {
        return ApiVersionsResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    // Features are omitted: tagged fields left at their defaults are not
    // written, which old librdkafka needs.
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// Kafka's pattern for client software names and versions:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else { return false };
    first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

/// The v0 answer to an ApiVersions request in a version we do not serve.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::valid_software_field;

    #[test]
    fn client_software_fields_follow_kafkas_pattern() {
        for ok in ["librdkafka", "apache-kafka-java", "2.12.1", "a"] {
            assert!(valid_software_field(ok), "{ok}");
        }
        for bad in ["", "-x", "x-", "has space", ".x", "x."] {
            assert!(!valid_software_field(bad), "{bad}");
        }
    }
}
