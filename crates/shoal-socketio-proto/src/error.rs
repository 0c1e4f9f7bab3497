//! Decoding errors. Each one closes the client's connection with "parse error".

/// A Socket.IO packet that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The packet is empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type (`0`-`6`).
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count of a binary packet is missing, not a number or not followed by `-`.
    #[error("illegal attachments")]
    IllegalAttachments,
    /// More attachments than the configured maximum.
    #[error("too many attachments")]
    TooManyAttachments,
    /// The ack id is not a number that fits.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The JSON payload does not parse.
    #[error("invalid payload: {0}")]
    InvalidJson(String),
    /// The payload parses but has the wrong shape for the packet type.
    #[error("invalid payload")]
    InvalidPayload,
    /// A placeholder points to an attachment that does not exist, or is malformed.
    #[error("illegal attachment placeholder")]
    InvalidPlaceholder,
    /// A text packet arrived while attachments were expected.
    #[error("text packet received while waiting for attachments")]
    UnexpectedText,
    /// A binary message arrived while no attachment was expected.
    #[error("unexpected binary attachment")]
    UnexpectedBinary,
    /// The attachments of one packet exceed the configured byte limit.
    #[error("attachments too large")]
    AttachmentsTooLarge,
}
