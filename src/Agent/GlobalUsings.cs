global using Attribute = Sched.V1.Attribute;
global using TaskStatus = Sched.V1.TaskStatus;
