package kv

import (
	bolt "go.etcd.io/bbolt"
)

var boltBucket = []byte("usertable")

// Bolt stores marshalled records in a go.etcd.io/bbolt database, one
// read-write transaction (synced to the file, bbolt's default) per write. An
// update reads, unmarshals, changes and marshals the whole record (a bbolt
// value is one byte string).
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (or creates) the bbolt store at path.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o644, nil)
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Bolt{db: db}, nil
}

// Insert implements Store.
func (s *Bolt) Insert(key string, fields [][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Put([]byte(key), marshal(nil, key, fields))
	})
}

// Read implements Store.
func (s *Bolt) Read(key string, dst [][]byte) (fields [][]byte, err error) {
	fields = dst
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(boltBucket).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		_, fields, _, err = unmarshal(v, dst)
		return err
	})
	return fields, err
}

// Update implements Store.
func (s *Bolt) Update(key string, i int, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		v := b.Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		_, fields, _, err := unmarshal(v, nil)
		if err != nil {
			return err
		}
		if i < 0 || i >= len(fields) {
			return ErrNotFound
		}
		fields[i] = value
		return b.Put([]byte(key), marshal(nil, key, fields))
	})
}

// Scan implements Store.
func (s *Bolt) Scan(start string, n int, fn func(string, [][]byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		var fields [][]byte
		for k, v := c.Seek([]byte(start)); k != nil && n > 0; k, v = c.Next() {
			var err error
			_, fields, _, err = unmarshal(v, fields)
			if err != nil {
				return err
			}
			if !fn(string(k), fields) {
				break
			}
			n--
		}
		return nil
	})
}

// Close implements Store.
func (s *Bolt) Close() error { return s.db.Close() }
