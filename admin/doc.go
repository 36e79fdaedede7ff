// Package admin is Tollgate's control plane: an HTTP API that is
// wire-compatible with Amazon API Gateway's REST API (v1) for usage plans
// and API keys, so the AWS SDKs and CLI work against it with an endpoint
// override (BaseEndpoint, AWS_ENDPOINT_URL or --endpoint-url). Callers
// authenticate as under "Authentication"; the guards under "Browsers" keep a
// web page in an operator's browser from using it.
//
// The package reads the configuration from a Store (the cluster's state,
// an immutable value per change) and changes it only by proposing Raft
// commands through Store.Apply; the state machine stamps dates and enforces
// the rules between objects (uniqueness, references, one plan per key and
// stage, deletions that would orphan something). This package validates
// shapes and values before anything is proposed, so bad input changes
// nothing.
//
// # Routes
//
//	GET    /account                                  GetAccount
//	PATCH  /account                                  UpdateAccount (/cloudwatchRoleArn, /throttle/rateLimit, /throttle/burstLimit)
//	POST   /restapis                                 CreateRestApi
//	GET    /restapis                                 GetRestApis (position, limit)
//	GET    /restapis/{id}                            GetRestApi
//	PATCH  /restapis/{id}                            UpdateRestApi (/name, /description, /version, /apiKeySource HEADER, ...)
//	DELETE /restapis/{id}                            DeleteRestApi (its stages leave the plans that cover them)
//	POST   /restapis?mode=import                     ImportRestApi (OpenAPI 3 or Swagger 2, JSON or YAML; failonwarnings)
//	PUT    /restapis/{id}                            PutRestApi (mode merge or overwrite; failonwarnings)
//	GET    /restapis/{id}/resources                  GetResources (position, limit; methods always embedded)
//	POST   /restapis/{id}/resources/{parent}         CreateResource
//	GET    /restapis/{id}/resources/{res}            GetResource
//	PATCH  /restapis/{id}/resources/{res}            UpdateResource (/pathPart, /parentId)
//	DELETE /restapis/{id}/resources/{res}            DeleteResource (and every resource under it)
//	PUT    /restapis/{id}/resources/{res}/methods/{m}    PutMethod (authorizationType NONE, apiKeyRequired)
//	GET, PATCH, DELETE the same                      GetMethod, UpdateMethod, DeleteMethod
//	PUT    /restapis/{id}/resources/{res}/methods/{m}/integration   PutIntegration (HTTP, HTTP_PROXY)
//	GET, PATCH, DELETE the same                      GetIntegration, UpdateIntegration, DeleteIntegration
//	GET    /restapis/{id}/stages/{stage}/exports/{oas30|swagger}   GetExport (extensions=integrations; Accept application/yaml)
//	POST   /restapis/{id}/deployments                CreateDeployment (stageName creates or moves a stage; snapshots the resources)
//	GET    /restapis/{id}/deployments                GetDeployments (position, limit)
//	GET    /restapis/{id}/deployments/{deployment}   GetDeployment
//	PATCH  /restapis/{id}/deployments/{deployment}   UpdateDeployment (/description)
//	DELETE /restapis/{id}/deployments/{deployment}   DeleteDeployment (refused while a stage serves it)
//	POST   /restapis/{id}/stages                     CreateStage
//	GET    /restapis/{id}/stages                     GetStages (deploymentId; not paged, as the original)
//	GET    /restapis/{id}/stages/{stage}             GetStage
//	PATCH  /restapis/{id}/stages/{stage}             UpdateStage
//	DELETE /restapis/{id}/stages/{stage}             DeleteStage (it leaves the plans that cover it)
//	POST   /restapis/{id}/stages/{stage}/defaultusageplan   extension, see below
//	POST   /usageplans                               CreateUsagePlan
//	GET    /usageplans                               GetUsagePlans (position, limit, keyId)
//	GET    /usageplans/{id}                          GetUsagePlan
//	PATCH  /usageplans/{id}                          UpdateUsagePlan
//	DELETE /usageplans/{id}                          DeleteUsagePlan
//	POST   /usageplans/{id}/keys                     CreateUsagePlanKey
//	GET    /usageplans/{id}/keys                     GetUsagePlanKeys (position, limit, name)
//	GET    /usageplans/{id}/keys/{keyId}             GetUsagePlanKey
//	DELETE /usageplans/{id}/keys/{keyId}             DeleteUsagePlanKey
//	GET    /usageplans/{id}/usage                    GetUsage (startDate, endDate, keyId, position, limit; export forms)
//	PATCH  /usageplans/{id}/keys/{keyId}/usage       UpdateUsage (replace /remaining)
//	GET    /usageplans/{id}/notifications            extension: {"item":[{keyId, periodStart, periodEnd, threshold, used, limit, time, state, attempts, error, sender}]}, newest first
//	POST   /apikeys                                  CreateApiKey
//	POST   /apikeys?mode=import&format=csv           ImportApiKeys (failonwarnings)
//	GET    /apikeys                                  GetApiKeys (position, limit, name, customerId, includeValues)
//	GET    /apikeys/{id}                             GetApiKey (includeValue)
//	PATCH  /apikeys/{id}                             UpdateApiKey
//	DELETE /apikeys/{id}                             DeleteApiKey (its usage stays in the billing export)
//	PUT    /tags/{arn}                               TagResource (plans, keys, REST APIs, stages) -> 204
//	DELETE /tags/{arn}                               UntagResource (tagKeys) -> 204
//	GET    /tags/{arn}                               GetTags
//	POST   /tollgate/credentials                     extension: {name, role} -> 201 {id, secret, token, role, ...}, the secret shown once
//	GET    /tollgate/credentials                     extension: {"item":[{id, name, role, createdDate, createdBy}]}, never secrets
//	DELETE /tollgate/credentials/{id}                extension: 202
//	GET    /healthz                                  {"status":"ok","caughtUp":true,"appliedIndex":N,"targetIndex":M}
//	GET    /metrics                                  Prometheus text
//
// A plan's quotaNotifications (extension) is {"webhookUrl": "https://…",
// "thresholds": [80, 100]} on CreateUsagePlan and in answers; UpdateUsagePlan
// takes /quotaNotifications/webhookUrl, /quotaNotifications/thresholds
// ("80,100") and remove /quotaNotifications (package notify sends them).
//
// # Wire rules
//
// Creates and imports answer 201, deletes 202 with no body, everything else
// 200. Dates are epoch seconds. Listings are {"item":[...],"position":"..."}
// with position only when more pages exist; limit is 1 to 500 (default 25);
// a position is opaque (base64 of the last item's sort key), so paging stays
// exact while items are added or removed. Every response carries
// x-amzn-RequestId. Errors carry x-amzn-ErrorType (BadRequestException 400,
// NotFoundException 404, ConflictException 409, ServiceUnavailableException
// 503 with Retry-After: 1 when the cluster cannot apply a change now) and
// {"message":"..."}. An unknown path is 404 NotFoundException, and so is a
// path that is not canonical (with //, . or .. segments: it is refused, not
// redirected); a known path with another method is 405
// MethodNotAllowedException with Allow. Path parameters are matched after
// unescaping, so an identifier holding "/" (%2F) names no object: 404.
//
// Bodies are read up to 1 MiB, once their Content-Type passed the check under
// "Browsers" (larger: 413 with
// x-amzn-ErrorType BadRequestException, so SDKs raise their BadRequest
// error). JSON is strict: malformed text, anything after the value, unknown
// or differently cased field names, duplicate names, nesting deeper than 32
// and wrong types are 400 with the field named. A missing field reads as its
// zero value (the SDKs leave zero values out). Fields of the original's
// request shapes that change nothing here are accepted and ignored:
// CreateRestApi's binaryMediaTypes, minimumCompressionSize, policy,
// endpointAccessMode and securityPolicy; caching, canary,
// documentation and tracing settings of CreateDeployment and CreateStage;
// CreateApiKey's deprecated generateDistinctId. Some are stored and shown
// back, and act on nothing all the same: an API's endpoint type and
// disableExecuteApiEndpoint, a stage's tracing, access log and cache
// settings (UpdateStage), the account's cloudwatchRoleArn. apiKeySource AUTHORIZER and
// cloneFrom are refused (400): they are not served. A change whose command
// would exceed 4 MiB is refused (400): an import of 10,000 keys fits, split
// larger ones.
//
// Values: burstLimit 0..2147483647; rateLimit finite, 0..1e9; a throttle
// with a burst above 0 needs a rate above 0; a rate with burst 0 is shown
// so and enforced with a burst of one second of the rate (rounded up, at
// least 1); both 0 blocks every request. Quota: period DAY, WEEK or MONTH,
// limit 0..1e12, offset as below. API key values are 20 to 128
// alphanumerics (40 generated when none is given); names at most 1024
// characters; descriptions at most 125000; at most 50 tags. Stage names are
// a-zA-Z0-9_- (at most 128); stage variable names a-zA-Z0-9_, values
// alphanumerics and -._~:/?#&=,% (the original's set plus % for escaped
// URLs); the variable "url", the upstream base URL, must be an absolute
// http or https URL. Per-method throttle keys of a plan stage are
// "{resourcePath}/{HTTPMETHOD}" ("/pets/GET", "//GET" for the root; "*"
// as a method means any); "*/*" is refused there as by the original, and
// allowed only as a stage's method settings key. Caps, set well above the
// original's small defaults: 200 method throttles per plan stage, 200 method
// settings and 100 variables per stage, 500 operations per PATCH.
//
// PATCH bodies run through one table per resource (patchtable.go): a row
// names a path as the original lists it, the ops it takes, and how to set
// and remove it; "Must be one of" lists in errors are derived from the same
// rows. Stage method settings are keyed "~1pets/GET" in answers (the
// resource path as one JSON Pointer segment), stored as "/pets/GET".
//
// # Authentication
//
// While the cluster holds no admin credential, a caller on the API's own
// host (a loopback peer) needs none and acts as "anonymous" with every
// right; others are answered 403 AccessDeniedException unless
// Config.AnonymousRemote (TestAuthNoCredentialsLoopbackOnly). Once one
// exists, every request but GET /healthz needs one, loopback included,
// checked before the route is looked at (an unknown path without one is 403
// too, as the original's "Missing Authentication Token"):
//
//   - AWS Signature Version 4 (sigv4.go) with the credential's id as the
//     access key id, service apigateway, any region, X-Amz-Date within 5
//     minutes of Config.Now. The body (up to the body limit) is hashed and
//     must match X-Amz-Content-Sha256 when that is sent; the handler reads
//     it afterwards as usual. The signature is recomputed with the AWS SDK's
//     signer and compared in constant time (TestAuthSigV4, TestAuthAWSSDK,
//     FuzzSigV4).
//   - Authorization: Bearer <id>.<secret>, the secret checked against its
//     stored lookup hash in constant time (TestAuthBearerAndRoles).
//
// Refusals, all 403 in the original's shape: none given,
// MissingAuthenticationTokenException "Missing Authentication Token"; an
// unknown id, a session token or a wrong bearer secret,
// UnrecognizedClientException "The security token included in the request
// is invalid."; a wrong signature or a date outside the window,
// InvalidSignatureException; a malformed header,
// IncompleteSignatureException. Roles: admin may do everything; read-only
// may GET and HEAD every route but /tollgate/credentials, and gets
// AccessDeniedException otherwise. The last admin credential cannot be
// deleted while read-only ones remain (409).
//
// Every command a request proposes carries its actor (the credential id or
// "anonymous"), and every write that passed authentication logs one line
// "msg=audit actor=... role=... method=... path=... status=...
// request_id=...", never a body (TestAuthActorAndAudit).
//
// # Browsers
//
// A page on another site can make a browser send, without asking the server
// first (a CORS preflight, which this API never grants), only GET, HEAD and
// POST with a Content-Type of text/plain, application/x-www-form-urlencoded
// or multipart/form-data, or none; a page whose DNS name was rebound to this
// host reaches the API as its own origin, with its own name in Host. So:
//
//   - A request whose Host is not one of the API's own is answered 403
//     ForbiddenException (x-amzn-ErrorType, {"message":...}) before anything
//     else: no route runs, no key value is read and nothing changes
//     (TestHostAllowlistDefault); metrics count it under the route label
//     "refused" (TestHostAllowlistDefault). The API's own: the address of the listener
//     the request came in on, and localhost, 127.0.0.1 and [::1] on that
//     listener's port, in any case, with or without a trailing dot; a Host
//     without a port means 80 (443 over TLS) (TestHostAllowlistDefault).
//     Config.AllowedHosts adds names and addresses on any port, name:port
//     on that port only, and "*" for any Host (TestHostAllowlistConfigured);
//     entries that cannot be a host are refused by Validate
//     (TestHostAllowlistValidate). A handler called directly, not through
//     net/http, has no listener: only the loopback names pass.
//   - POST, PUT and PATCH must carry a JSON Content-Type (application/json,
//     application/x-amz-json-1.0 or 1.1, parameters such as charset
//     allowed), with or without a body; the key import (POST /apikeys with
//     mode=import) text/csv or application/octet-stream (the AWS SDK for Go
//     v2), or no Content-Type on a request with X-Amz-Date (the AWS CLI
//     signs it and sends no type). Anything else is answered 415 with
//     x-amzn-ErrorType BadRequestException, so the SDKs raise their
//     BadRequest error, and changes nothing (TestContentTypeRequired). The
//     type is checked only on a route that exists, after 404 and 405. GET
//     and DELETE need none. The AWS SDK for Go v2 and the AWS CLI pass both
//     checks unchanged (TestAWSSDKCompatibility, TestAWSCLICompatibility).
//
// # Quota periods and offset
//
// The original documents offset two ways. Tollgate reads it as the day the
// period starts on (limiter/doc.go): DAY takes 0; WEEK 0 (Sunday) to 6
// (Saturday); MONTH 0 (the 1st) to 27 (the 28th). Periods are UTC.
//
// # Patch operations
//
// UpdateUsagePlan takes the original's table: replace /name, /description;
// add, replace or remove /productCode; add or remove /apiStages with value
// "apiId:stage"; remove /quota and /throttle; add or replace /quota/limit,
// /quota/offset, /quota/period, /throttle/burstLimit, /throttle/rateLimit
// (the plan is validated as a whole after all operations, so set a new
// quota's period, limit and offset in one request); replace
// /apiStages/{apiId}:{stage}/throttle/{resourcePath}/{METHOD}/rateLimit or
// /burstLimit, with the resource path raw (…/throttle//pets/GET/rateLimit);
// remove /apiStages/{apiId}:{stage}/throttle/{resourcePath}/{METHOD}; replace
// /apiStages/{apiId}:{stage}/throttle with the whole map as a JSON string, or
// remove it. UpdateApiKey takes replace of /name, /description, /enabled
// ("true" in any case is true, anything else false, as the original) and
// /customerId; its answer omits the value. UpdateStage takes replace of
// /description and /deploymentId; replace (or add) and remove of
// /variables/{name}; replace of /{resource}/{METHOD}/throttling/rateLimit,
// …/throttling/burstLimit, …/metrics/enabled, …/logging/loglevel (OFF,
// ERROR, INFO) and …/logging/dataTrace, where the resource is "*" or a path
// with "/" written "~1" (/~1pets/GET/throttling/rateLimit sets "/pets/GET");
// remove of /{resource}/{METHOD} drops a method setting, and (extension)
// remove of its throttling/rateLimit or burstLimit makes it inherit the
// account's again; replace of /apiKeyRequired (extension). UpdateAccount
// takes replace of /throttle/rateLimit and /throttle/burstLimit, and add
// /features UsagePlans (which changes nothing). A path an operation cannot
// take is answered as the original does:
//
//	Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/description, /enabled, /name, /customerId]
//
// An update reads the object, applies the operations to a copy, validates
// it and puts it back guarded by the revision it read; when another change
// landed in between it starts over (five times at most, then 409).
//
// # Usage
//
// GetUsage answers, for each key of the plan (paged by key id) and each day
// from startDate to endDate inclusive (at most 90 days apart), [used,
// remaining]. The values map is keyed by API key id. used is the day's
// count. remaining is what was left at the end of that day in the quota
// period containing it: limit + the extension granted for that period −
// the period's usage up to that day, never below 0. A plan without a quota
// reports remaining -1. Keys detached from the plan still appear while the
// plan holds usage for them, so a report covers every billable key. Usage
// is real time: reports reach the ledger within the nodes' report interval.
// History is computed with the plan's current quota; changing the period
// or limit re-reads the past with the new settings.
//
// Changing a plan's quota takes effect at once: the current period is the
// one the new settings give, and it counts the requests already made in it
// (from the daily history), so a period change forgets nothing. A limit
// lowered below what was used leaves 0 remaining, never a negative or
// wrapped number. A quota limit of 0 admits no request; "no quota" is the
// absence of the quota object, never a sentinel number. An extension
// (UpdateUsage) belongs to the period it was granted in.
//
// UpdateUsage (replace /remaining, an integer 0..1e12) sets what the key has
// left in the current period by extending (or shrinking) its limit for that
// period only, and answers with today's usage of that key.
//
// Export for billing (extension): the same GetUsage request with
// ?format=csv, or Accept: text/csv, answers text/csv with the header
// keyId,name,customerId,date,used,remaining and one row per key per day;
// ?format=ndjson or Accept: application/x-ndjson answers one JSON object
// per line with the same fields. ?format=json is the default document.
// Exports are not paged (position or limit with them is 400): they stream
// every key. Text cells that a spreadsheet would read as a formula (leading
// = + - @) are written with a leading apostrophe.
//
// # Extensions
//
//   - Stage apiKeyRequired (default true): false lets callers use the stage
//     without a key (no plan applies to them).
//   - POST /restapis/{id}/stages/{stage}/defaultusageplan creates the
//     stage's default plan "default-{apiId}-{stage}" (no throttle, no quota)
//     and attaches every key that no plan admits on that stage yet: 201 with
//     the plan. A stage has at most one default plan (409).
//   - GetUsage exports as above; remaining -1 for a plan without a quota.
//   - The CSV import reads fields quoted with '…' as well as "…"; a key
//     listed twice in one file is imported once, from its last line, with
//     a warning naming both lines.
//
// # Differences from the original
//
//   - Method throttles need both a rate and a burst above 0 (or both 0);
//     the original accepts a rate with burst 0.
//   - CreateUsagePlan with an empty apiId or stage answers the original's
//     message with the values filled in, instead of the unformatted template.
//   - GetUsage with a keyId that is not in the plan answers an empty values
//     map.
//   - Usage is exact and immediate; the original's lags by half an hour.
package admin
