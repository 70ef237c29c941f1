//! Validation of object names, metadata and the fields of each kind, with causes that name each bad field.
