using Google.Protobuf.Reflection;
using Scheduler.Etcd.V3;
using Scheduler.Rpc;

namespace Scheduler.Etcd;

/// <summary>Typed gRPC methods of the etcd v3 API, built from protos/etcd/etcdserverpb/rpc.proto.</summary>
public static class EtcdMethods
{
    private static ServiceDescriptor Service(string name) =>
        RpcReflection.Descriptor.FindTypeByName<ServiceDescriptor>(name)
        ?? throw new InvalidOperationException($"etcdserverpb.{name} is missing from rpc.proto.");

    public static readonly Method<RangeRequest, RangeResponse> Range = Method.FromDescriptor<RangeRequest, RangeResponse>(Service("KV"), "Range");
    public static readonly Method<PutRequest, PutResponse> Put = Method.FromDescriptor<PutRequest, PutResponse>(Service("KV"), "Put");
    public static readonly Method<DeleteRangeRequest, DeleteRangeResponse> DeleteRange = Method.FromDescriptor<DeleteRangeRequest, DeleteRangeResponse>(Service("KV"), "DeleteRange");
    public static readonly Method<TxnRequest, TxnResponse> Txn = Method.FromDescriptor<TxnRequest, TxnResponse>(Service("KV"), "Txn");
    public static readonly Method<CompactionRequest, CompactionResponse> Compact = Method.FromDescriptor<CompactionRequest, CompactionResponse>(Service("KV"), "Compact");

    public static readonly Method<WatchRequest, WatchResponse> Watch = Method.FromDescriptor<WatchRequest, WatchResponse>(Service("Watch"), "Watch");

    public static readonly Method<LeaseGrantRequest, LeaseGrantResponse> LeaseGrant = Method.FromDescriptor<LeaseGrantRequest, LeaseGrantResponse>(Service("Lease"), "LeaseGrant");
    public static readonly Method<LeaseRevokeRequest, LeaseRevokeResponse> LeaseRevoke = Method.FromDescriptor<LeaseRevokeRequest, LeaseRevokeResponse>(Service("Lease"), "LeaseRevoke");
    public static readonly Method<LeaseKeepAliveRequest, LeaseKeepAliveResponse> LeaseKeepAlive = Method.FromDescriptor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>(Service("Lease"), "LeaseKeepAlive");
    public static readonly Method<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse> LeaseTimeToLive = Method.FromDescriptor<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>(Service("Lease"), "LeaseTimeToLive");

    public static readonly Method<StatusRequest, StatusResponse> Status = Method.FromDescriptor<StatusRequest, StatusResponse>(Service("Maintenance"), "Status");

    public static readonly Method<AuthenticateRequest, AuthenticateResponse> Authenticate = Method.FromDescriptor<AuthenticateRequest, AuthenticateResponse>(Service("Auth"), "Authenticate");
    public static readonly Method<AuthEnableRequest, AuthEnableResponse> AuthEnable = Method.FromDescriptor<AuthEnableRequest, AuthEnableResponse>(Service("Auth"), "AuthEnable");
    public static readonly Method<AuthUserAddRequest, AuthUserAddResponse> UserAdd = Method.FromDescriptor<AuthUserAddRequest, AuthUserAddResponse>(Service("Auth"), "UserAdd");
    public static readonly Method<AuthUserGrantRoleRequest, AuthUserGrantRoleResponse> UserGrantRole = Method.FromDescriptor<AuthUserGrantRoleRequest, AuthUserGrantRoleResponse>(Service("Auth"), "UserGrantRole");
    public static readonly Method<AuthRoleAddRequest, AuthRoleAddResponse> RoleAdd = Method.FromDescriptor<AuthRoleAddRequest, AuthRoleAddResponse>(Service("Auth"), "RoleAdd");
}
