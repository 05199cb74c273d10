//! In-process fakes of the CRMs that cannot run offline. Each records exactly what it received
//! (method, path, query, headers, body fields) so tests can assert the documented request, and
//! can be told to answer with the vendor's documented errors.

pub mod salesforce;
