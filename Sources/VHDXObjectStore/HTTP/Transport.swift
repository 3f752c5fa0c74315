import AsyncHTTPClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends signed requests with async-http-client on an event-loop group of its own, retrying
/// what can succeed later. Futures for pipelining (uploads, read-ahead); `perform` blocks.
final class Transport: Sendable {
    let endpoint: S3Endpoint
    let signer: SigV4Signer
    let retry: RetryPolicy
    let group: MultiThreadedEventLoopGroup
    let http: HTTPClient
    private let shutDown = NIOLockedValueBox(false)

    init(configuration: S3Configuration, retry: RetryPolicy, connectTimeout: TimeAmount, readTimeout: TimeAmount) {
        endpoint = configuration.endpoint
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
        self.retry = retry
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var config = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: connectTimeout, read: readTimeout),
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32))
        config.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: config)
    }

    /// Closes the connections and stops the event loops (idempotent). Requests still in flight fail.
    func shutdown() {
        let first = shutDown.withLockedValue { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        try? http.syncShutdown()
        try? group.syncShutdownGracefully()
    }

    /// Runs the request (with retries) and blocks until it is done. Not from an event loop.
    func perform(_ request: S3Request) throws(S3Error) -> S3Response {
        do {
            return try send(request).wait()
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error(.unavailable, operation: request.operation, bucket: request.bucket, key: request.key,
                          endpoint: endpoint.description, message: "\(error)")
        }
    }

    /// Runs the request, retrying 5xx, throttling and transport failures per the policy; the
    /// future fails with an `S3Error`.
    func send(_ request: S3Request) -> EventLoopFuture<S3Response> {
        attempt(request, number: 1)
    }

    private func attempt(_ request: S3Request, number: Int) -> EventLoopFuture<S3Response> {
        let loop = group.next()
        let httpRequest: HTTPClient.Request
        do {
            httpRequest = try build(request)
        } catch {
            return loop.makeFailedFuture(S3Error(.invalidArgument, operation: request.operation, bucket: request.bucket,
                                                 key: request.key, endpoint: endpoint.description,
                                                 message: "the request could not be formed: \(error)"))
        }
        let endpointName = endpoint.description
        return http.execute(request: httpRequest).flatMapThrowing { response -> S3Response in
            let status = Int(response.status.code)
            if (200..<300).contains(status) {
                return S3Response(status: status, headers: response.headers, body: response.body)
            }
            throw Failure.response(status: status, body: response.body.map { Array($0.readableBytesView) } ?? [])
        }.flatMapError { error -> EventLoopFuture<S3Response> in
            let (failure, retryable) = Self.classify(error, request: request, endpoint: endpointName)
            guard retryable, number < self.retry.maxAttempts, !self.shutDown.withLockedValue({ $0 }) else {
                return loop.makeFailedFuture(failure.with(attempts: number))
            }
            let wait = self.retry.delay(afterAttempt: number)
            return loop.scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) {}.futureResult
                .flatMap { self.attempt(request, number: number + 1) }
        }
    }

    enum Failure: Error {
        case response(status: Int, body: [UInt8])
    }

    /// The URL (path-style, encoded as signed) and the signed headers.
    private func build(_ request: S3Request) throws -> HTTPClient.Request {
        let path = SigV4Signer.uriEncode(request.path, keepSlash: true)
        let query = request.query
            .map { SigV4Signer.uriEncode($0.0, keepSlash: false) + "=" + SigV4Signer.uriEncode($0.1, keepSlash: false) }
            .joined(separator: "&")
        let url = "\(endpoint.scheme)://\(endpoint.hostHeader)\(path)\(query.isEmpty ? "" : "?" + query)"
        var headers = request.headers
        headers.append(("Host", endpoint.hostHeader))
        let signed = signer.sign(method: request.method.rawValue, path: request.path, query: request.query,
                                 headers: headers, payloadHash: request.payloadHash,
                                 date: Int64(Date().timeIntervalSince1970))
        var httpHeaders = HTTPHeaders()
        for (name, value) in signed.headers { httpHeaders.add(name: name, value: value) }
        return try HTTPClient.Request(url: url, method: request.method, headers: httpHeaders,
                                      body: request.body.map { .byteBuffer($0) })
    }

    /// The `S3Error` for a failed attempt, and whether another attempt may succeed.
    static func classify(_ error: Error, request: S3Request, endpoint: String) -> (S3Error, Bool) {
        func make(_ code: S3Error.Code, s3Code: String? = nil, status: Int? = nil, _ message: String) -> S3Error {
            S3Error(code, operation: request.operation, bucket: request.bucket, key: request.key,
                    endpoint: endpoint, s3Code: s3Code, status: status, message: message)
        }
        if let error = error as? S3Error { return (error, false) }
        guard case let Failure.response(status, body) = error else {
            // Connection refused or reset, timeouts, a closed connection: the server may be back soon.
            if let e = error as? HTTPClientError, e == .alreadyShutdown || e == .cancelled {
                return (make(.unavailable, "the client was shut down"), false)
            }
            return (make(.unavailable, "\(error)"), true)
        }
        let xml = XMLElement.parse(body)
        let s3Code = xml?.value("Code")
        let message = xml?.value("Message").flatMap { $0.isEmpty ? nil : $0 }
            ?? HTTPResponseStatus(statusCode: status).reasonPhrase
        let retryableCodes: Set<String> = ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
                                           "Throttling", "ThrottlingException", "RequestLimitExceeded"]
        if status >= 500 || status == 429 || (s3Code.map(retryableCodes.contains) ?? false) {
            return (make(.unavailable, s3Code: s3Code, status: status, message), true)
        }
        let code: S3Error.Code
        switch s3Code {
        case "NoSuchBucket": code = .noSuchBucket
        case "NoSuchKey": code = .noSuchKey
        case "NoSuchUpload": code = .noSuchUpload
        case "AccessDenied", "AllAccessDisabled", "AccountProblem": code = .accessDenied
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
             "InvalidClientTokenId", "AuthorizationHeaderMalformed":
            code = .badCredentials
        case "PreconditionFailed": code = .objectChanged
        case nil:
            // HEAD answers carry no body: the status alone says what it can.
            switch status {
            case 404: code = request.key == nil ? .noSuchBucket : .noSuchKey
            case 403: code = .accessDenied
            case 412: code = .objectChanged
            default: code = .rejected
            }
        default: code = .rejected
        }
        return (make(code, s3Code: s3Code, status: status, message), false)
    }
}
