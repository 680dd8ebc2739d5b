using Sched.V1;

namespace Scheduler.Protocol.Resources;

public sealed partial class ResourceSet
{
    /// <summary>One normalised resource: identity (a value-less proto shape) plus an exact value.</summary>
    private sealed class Entry
    {
        private Entry(Resource shape, Resource.ValueOneofCase kind, long milli, RangeSet ranges, ItemSet items)
        {
            Shape = shape;
            Kind = kind;
            Milli = milli;
            Ranges = ranges;
            Items = items;
        }

        /// <summary>Identity fields (name, reservation, allocation role, disk); the value is kept below.</summary>
        public Resource Shape { get; }

        public Resource.ValueOneofCase Kind { get; }

        public long Milli { get; }

        public RangeSet Ranges { get; }

        public ItemSet Items { get; }

        public bool IsEmpty => Kind switch
        {
            Resource.ValueOneofCase.Scalar => Milli == 0,
            Resource.ValueOneofCase.Ranges => Ranges.IsEmpty,
            _ => Items.IsEmpty,
        };

        public static Entry From(Resource r)
        {
            var shape = new Resource
            {
                Name = r.Name,
                AllocationRole = r.AllocationRole,
                Reservation = r.Reservation?.Clone(),
                Disk = r.Disk?.Clone(),
            };
            return r.ValueCase switch
            {
                Resource.ValueOneofCase.Scalar => new Entry(shape, r.ValueCase, FixedScalar.ToFixed(r.Scalar), RangeSet.Empty, ItemSet.Empty),
                Resource.ValueOneofCase.Ranges => new Entry(shape, r.ValueCase, 0, RangeSet.FromProto(r.Ranges), ItemSet.Empty),
                _ => new Entry(shape, r.ValueCase, 0, RangeSet.Empty, ItemSet.FromProto(r.Set)),
            };
        }

        public bool SameIdentity(Entry other) =>
            Kind == other.Kind
            && Shape.Name == other.Shape.Name
            && Shape.AllocationRole == other.Shape.AllocationRole
            && Equals(Shape.Reservation, other.Shape.Reservation)
            && Equals(Shape.Disk, other.Shape.Disk);

        private Entry With(long milli, RangeSet ranges, ItemSet items) => new(Shape, Kind, milli, ranges, items);

        public Entry Plus(Entry other) => Kind switch
        {
            Resource.ValueOneofCase.Scalar => With(checked(Milli + other.Milli), Ranges, Items),
            Resource.ValueOneofCase.Ranges => With(0, Ranges.Union(other.Ranges), Items),
            _ => With(0, Ranges, Items.Union(other.Items)),
        };

        public Entry Minus(Entry other) => Kind switch
        {
            Resource.ValueOneofCase.Scalar => With(Math.Max(0, Milli - other.Milli), Ranges, Items),
            Resource.ValueOneofCase.Ranges => With(0, Ranges.Subtract(other.Ranges), Items),
            _ => With(0, Ranges, Items.Subtract(other.Items)),
        };

        public bool Covers(Entry other) => Kind switch
        {
            Resource.ValueOneofCase.Scalar => Milli >= other.Milli,
            Resource.ValueOneofCase.Ranges => Ranges.Contains(other.Ranges),
            _ => Items.Contains(other.Items),
        };

        public Entry WithAllocationRole(string role)
        {
            var shape = Shape.Clone();
            shape.AllocationRole = role;
            return new Entry(shape, Kind, Milli, Ranges, Items);
        }

        public Entry WithReservation(Reservation? reservation)
        {
            var shape = Shape.Clone();
            shape.Reservation = reservation?.Clone();
            return new Entry(shape, Kind, Milli, Ranges, Items);
        }

        public Resource ToProto()
        {
            var r = Shape.Clone();
            switch (Kind)
            {
                case Resource.ValueOneofCase.Scalar:
                    r.Scalar = FixedScalar.ToDouble(Milli);
                    break;
                case Resource.ValueOneofCase.Ranges:
                    r.Ranges = Ranges.ToProto();
                    break;
                default:
                    r.Set = Items.ToProto();
                    break;
            }

            return r;
        }
    }
}
