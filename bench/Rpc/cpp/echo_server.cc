// Reference gRPC C++ server for bench/Rpc: the same sched.v1 methods the .NET bench server
// implements — Operator.GetHealth (unary) and Scheduler.Subscribe (streams N events, N taken
// from SubscribeRequest.framework_info.name). Listens on 127.0.0.1:0, prints "port N", and
// stops when stdin closes.
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "sched/v1/operator.grpc.pb.h"
#include "sched/v1/scheduler.grpc.pb.h"

namespace {

class OperatorImpl final : public sched::v1::Operator::CallbackService {
  grpc::ServerUnaryReactor* GetHealth(grpc::CallbackServerContext* context,
                                      const sched::v1::GetHealthRequest*,
                                      sched::v1::GetHealthResponse* response) override {
    response->set_healthy(true);
    response->set_role("bench");
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class EventWriter final : public grpc::ServerWriteReactor<sched::v1::Event> {
 public:
  explicit EventWriter(long count) : remaining_(count) {
    event_.mutable_heartbeat();
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (remaining_-- > 0) {
      StartWrite(&event_);
    } else {
      Finish(grpc::Status::OK);
    }
  }
  long remaining_;
  sched::v1::Event event_;
};

class SchedulerImpl final : public sched::v1::Scheduler::CallbackService {
  grpc::ServerWriteReactor<sched::v1::Event>* Subscribe(grpc::CallbackServerContext*,
                                                        const sched::v1::SubscribeRequest* request) override {
    long n = 0;
    try {
      n = std::stol(request->framework_info().name());
    } catch (...) {
      n = 0;
    }
    return new EventWriter(n);
  }
};

}  // namespace

int main() {
  OperatorImpl op;
  SchedulerImpl sched;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&op);
  builder.RegisterService(&sched);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "failed to start the gRPC server" << std::endl;
    return 1;
  }
  std::cout << "port " << port << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  server->Shutdown();
  return 0;
}
