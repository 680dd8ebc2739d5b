global using TaskStatus = Sched.V1.TaskStatus;
