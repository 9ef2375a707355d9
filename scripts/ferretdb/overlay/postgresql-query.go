// Patched copy of FerretDB v1.24.2 internal/backends/postgresql/query.go, compiled in from a
// vendored build directory (see src/db/local-server.ts). Two changes, marked "cronjobs patch":
//   - an `_id` equality with a string or ObjectID is written `_jsonb->'_id' = $n`, the expression
//     of FerretDB's own unique `_id` index, so PostgreSQL searches that index; the original
//     `_jsonb->$1 @> $2` binds the key as a parameter and uses containment, which no index
//     matches, so every lookup by _id read the whole table. `_id` is never an array, so equality
//     and containment select the same documents (and FerretDB filters every returned one again).
//     Measured (10 000 documents, PostgreSQL 17, median of 60, 2 shared cores, unpatched and
//     patched builds alternated on one cluster): findOne by _id 12.5 ms -> 1.3 ms, updateOne by
//     _id 10-12 ms -> 0.8-1.4 ms.
//   - an equality (`{f: v}`, `{f: {$eq: v}}`) on any other top-level field (no dots) with a
//     string, ObjectID, bool, int32 or date is written (see filterEqualIndexed)
//       (_jsonb->'f' = $n OR (_jsonb->'f' > 'true' AND _jsonb->'f' < '{}'))
//     with the field name quoted as an SQL literal the way FerretDB quotes it in CREATE INDEX, so
//     both arms are searches of the btree index FerretDB builds for a MongoDB index on f,
//     `((_jsonb->'f'))` (a BitmapOr; a compound index whose first field is f serves too).
//     Exact, arrays included: MongoDB's equality also matches an array holding v, which `=`
//     alone would miss; the second arm is the btree range that holds exactly the non-empty
//     arrays (jsonb's btree order), empty where no document keeps an array in f. Like the `@>`
//     it replaces it may select a superset (a date and a number of the same milliseconds, every
//     array), which FerretDB's own check in Go narrows. Numbers other than int32 (FerretDB's
//     ranges for unsafe doubles and longs), null, documents, arrays as v and dotted paths keep
//     FerretDB's form. Measured with bench/local-db/pushdown.ts: see docs/database.md.

// Copyright 2021 FerretDB Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

package postgresql

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/FerretDB/FerretDB/internal/backends/postgresql/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// selectParams contains params that specify how prepareSelectClause function will
// build the SELECT SQL query.
type selectParams struct {
	Schema  string
	Table   string
	Comment string

	Capped        bool
	OnlyRecordIDs bool
}

// prepareSelectClause returns SELECT clause for default column of provided schema and table name.
//
// For capped collection with onlyRecordIDs, it returns select clause for recordID column.
//
// For capped collection, it returns select clause for recordID column and default column.
func prepareSelectClause(params *selectParams) string {
	if params == nil {
		params = new(selectParams)
	}

	if params.Comment != "" {
		params.Comment = strings.ReplaceAll(params.Comment, "/*", "/ *")
		params.Comment = strings.ReplaceAll(params.Comment, "*/", "* /")
		params.Comment = `/* ` + params.Comment + ` */`
	}

	if params.Capped && params.OnlyRecordIDs {
		return fmt.Sprintf(
			`SELECT %s %s FROM %s`,
			params.Comment,
			metadata.RecordIDColumn,
			pgx.Identifier{params.Schema, params.Table}.Sanitize(),
		)
	}

	if params.Capped {
		return fmt.Sprintf(
			`SELECT %s %s, %s FROM %s`,
			params.Comment,
			metadata.RecordIDColumn,
			metadata.DefaultColumn,
			pgx.Identifier{params.Schema, params.Table}.Sanitize(),
		)
	}

	return fmt.Sprintf(
		`SELECT %s %s FROM %s`,
		params.Comment,
		metadata.DefaultColumn,
		pgx.Identifier{params.Schema, params.Table}.Sanitize(),
	)
}

// prepareWhereClause adds WHERE clause with given filters to the query and returns the query and arguments.
func prepareWhereClause(p *metadata.Placeholder, sqlFilters *types.Document) (string, []any, error) {
	var filters []string
	var args []any

	iter := sqlFilters.Iterator()
	defer iter.Close()

	// iterate through root document
	for {
		rootKey, rootVal, err := iter.Next()
		if err != nil {
			if errors.Is(err, iterator.ErrIteratorDone) {
				break
			}

			return "", nil, lazyerrors.Error(err)
		}

		keyOperator := "->" // keyOperator is the operator that is used to access the field. (->/#>)

		// key can be either a string '"v"' or PostgreSQL path '{v,foo}'.
		// We use path type only for dot notation due to simplicity of SQL queries, and the fact
		// that path doesn't handle empty keys.
		var key any = rootKey

		// don't pushdown $comment, as it's attached to query with select clause
		//
		// all of the other top-level operators such as `$or` do not support pushdown yet
		if strings.HasPrefix(rootKey, "$") {
			continue
		}

		path, err := types.NewPathFromString(rootKey)

		var pe *types.PathError

		switch {
		case err == nil:
			if path.Len() > 1 {
				keyOperator = "#>"
				key = path.Slice() // '{v,foo}'
			}

		case errors.As(err, &pe):
			// ignore empty key error, otherwise return error
			if pe.Code() != types.ErrPathElementEmpty {
				return "", nil, lazyerrors.Error(err)
			}
		default:
			panic("Invalid error type: PathError expected")
		}

		switch v := rootVal.(type) {
		case *types.Document:
			iter := v.Iterator()
			defer iter.Close()

			// iterate through subdocument, as it may contain operators
			for {
				k, v, err := iter.Next()
				if err != nil {
					if errors.Is(err, iterator.ErrIteratorDone) {
						break
					}

					return "", nil, lazyerrors.Error(err)
				}

				switch k {
				case "$eq":
					if f, a := filterEqual(p, key, v, keyOperator); f != "" {
						filters = append(filters, f)
						args = append(args, a...)
					}

				case "$ne":
					sql := `NOT ( ` +
						// does document contain the key,
						// it is necessary, as NOT won't work correctly if the key does not exist.
						`%[1]s ? %[2]s AND ` +
						// does the value under the key is equal to filter value
						`%[1]s->%[2]s @> %[3]s AND ` +
						// does the value type is equal to the filter's one
						`%[1]s->'$s'->'p'->%[2]s->'t' = '"%[4]s"' )`

					switch v := v.(type) {
					case *types.Document, *types.Array, types.Binary,
						types.NullType, types.Regex, types.Timestamp:
						// type not supported for pushdown

					case float64, bool, int32, int64:
						filters = append(filters, fmt.Sprintf(
							sql,
							metadata.DefaultColumn,
							p.Next(),
							p.Next(),
							sjson.GetTypeOfValue(v),
						))

						// merge with the case below?
						// TODO https://github.com/FerretDB/FerretDB/issues/3626
						args = append(args, rootKey, v)

					case string, types.ObjectID, time.Time:
						filters = append(filters, fmt.Sprintf(
							sql,
							metadata.DefaultColumn,
							p.Next(),
							p.Next(),
							sjson.GetTypeOfValue(v),
						))

						// merge with the case above?
						// TODO https://github.com/FerretDB/FerretDB/issues/3626
						args = append(args, rootKey, string(must.NotFail(sjson.MarshalSingleValue(v))))

					default:
						panic(fmt.Sprintf("Unexpected type of value: %v", v))
					}

				default:
					// $gt and $lt
					// TODO https://github.com/FerretDB/FerretDB/issues/1875
					continue
				}
			}

		case *types.Array, types.Binary, types.NullType, types.Regex, types.Timestamp:
			// type not supported for pushdown

		case float64, string, types.ObjectID, bool, time.Time, int32, int64:
			if f, a := filterEqual(p, key, v, keyOperator); f != "" {
				filters = append(filters, f)
				args = append(args, a...)
			}

		default:
			panic(fmt.Sprintf("Unexpected type of value: %v", v))
		}
	}

	var filter string
	if len(filters) > 0 {
		filter = ` WHERE ` + strings.Join(filters, " AND ")
	}

	return filter, args, nil
}

// prepareOrderByClause returns ORDER BY clause with arguments for given sort document.
//
// The provided sort document should be already validated.
// Provided document should only contain a single value.
func prepareOrderByClause(sort *types.Document) (string, []any) {
	if sort.Len() != 1 {
		return "", nil
	}

	v := must.NotFail(sort.Get("$natural"))
	var order string

	switch v.(int64) {
	case 1:
		// Ascending order
	case -1:
		order = " DESC"
	default:
		panic("not reachable")
	}

	return fmt.Sprintf(" ORDER BY %s%s", metadata.RecordIDColumn, order), nil
}

// filterEqual returns the proper SQL filter with arguments that filters documents
// where the value under k is equal to v.
func filterEqual(p *metadata.Placeholder, k any, v any, operator string) (filter string, args []any) {
	// Select if value under the key is equal to provided value.
	sql := `%[1]s%[2]s%[3]s @> %[4]s`

	switch v := v.(type) {
	case *types.Document, *types.Array, types.Binary,
		types.NullType, types.Regex, types.Timestamp:
		// type not supported for pushdown

	case float64:
		// If value is not safe double, fetch all numbers out of safe range.
		// TODO https://github.com/FerretDB/FerretDB/issues/3626
		switch {
		case v > types.MaxSafeDouble:
			sql = `%[1]s%[2]s%[3]s > %[4]s`
			v = types.MaxSafeDouble

		case v < -types.MaxSafeDouble:
			sql = `%[1]s%[2]s%[3]s < %[4]s`
			v = -types.MaxSafeDouble
		default:
			// don't change the default eq query
		}

		filter = fmt.Sprintf(sql, metadata.DefaultColumn, operator, p.Next(), p.Next())
		args = append(args, k, v)

	case string, types.ObjectID, time.Time:
		// cronjobs patch: `_id` compared by the expression its unique index is built on.
		if _, isTime := v.(time.Time); k == "_id" && operator == "->" && !isTime {
			filter = fmt.Sprintf(`%s = %s`, metadata.IDColumn, p.Next())
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(v))))

			return
		}

		// cronjobs patch: other top-level fields by the expression of FerretDB's field indexes.
		if field, ok := indexableField(k, operator); ok {
			return filterEqualIndexed(p, field, v)
		}

		// merge with the case below?
		// TODO https://github.com/FerretDB/FerretDB/issues/3626

		// don't change the default eq query
		filter = fmt.Sprintf(sql, metadata.DefaultColumn, operator, p.Next(), p.Next())
		args = append(args, k, string(must.NotFail(sjson.MarshalSingleValue(v))))

	case bool, int32:
		// cronjobs patch: as above.
		if field, ok := indexableField(k, operator); ok {
			return filterEqualIndexed(p, field, v)
		}

		// merge with the case above?
		// TODO https://github.com/FerretDB/FerretDB/issues/3626

		// don't change the default eq query
		filter = fmt.Sprintf(sql, metadata.DefaultColumn, operator, p.Next(), p.Next())
		args = append(args, k, v)

	case int64:
		// TODO https://github.com/FerretDB/FerretDB/issues/3626
		maxSafeDouble := int64(types.MaxSafeDouble)

		// If value cannot be safe double, fetch all numbers out of the safe range.
		switch {
		case v > maxSafeDouble:
			sql = `%[1]s%[2]s%[3]s > %[4]s`
			v = maxSafeDouble

		case v < -maxSafeDouble:
			sql = `%[1]s%[2]s%[3]s < %[4]s`
			v = -maxSafeDouble
		default:
			// don't change the default eq query
		}

		filter = fmt.Sprintf(sql, metadata.DefaultColumn, operator, p.Next(), p.Next())
		args = append(args, k, v)

	default:
		panic(fmt.Sprintf("Unexpected type of value: %v", v))
	}

	return
}

// cronjobs patch: equality on a top-level field in a form the field's index answers.

// indexableField returns the field name when k is a top-level field other than `_id` (written
// `_jsonb->'field'`, the expression FerretDB indexes it by); dotted paths keep FerretDB's form.
func indexableField(k any, operator string) (string, bool) {
	field, ok := k.(string)
	if !ok || operator != "->" || field == "" || field == "_id" || strings.Contains(field, ".") {
		return "", false
	}

	return field, true
}

// filterEqualIndexed returns a filter selecting the documents whose top-level field equals v,
// plus every document where that field holds a non-empty array (MongoDB's equality also matches
// an array with an element equal to v; FerretDB checks each returned document again in Go):
//
//	(_jsonb->'f' = $n OR (_jsonb->'f' > 'true' AND _jsonb->'f' < '{}'))
//
// Both arms are searches of the btree index FerretDB builds on `((_jsonb->'f'))` (a BitmapOr):
// in jsonb's btree order, Object > Array > Boolean > Number > String > Null, an array with
// n elements sorts above one with n - 1, and only an empty array sorts below null; so the range
// between `true` (the greatest non-array scalar) and `{}` (the least object) holds exactly the
// non-empty arrays. Where no document stores an array there, that arm is an empty range.
//
// v's JSON text is the value FerretDB stores (sjson): a string or an ObjectID's hex as a JSON
// string, a bool as a JSON boolean, an int32 as a number, a date as its milliseconds since the
// epoch (a number): jsonb `=` compares numbers numerically, like the `@>` it replaces, so a date
// also selects a number of the same milliseconds and FerretDB's own check drops it.
func filterEqualIndexed(p *metadata.Placeholder, field string, v any) (filter string, args []any) {
	expr := fmt.Sprintf(`(%s->%s)`, metadata.DefaultColumn, quoteFieldName(field))
	filter = fmt.Sprintf(
		`(%[1]s = %[2]s OR (%[1]s > 'true'::jsonb AND %[1]s < '{}'::jsonb))`,
		expr,
		p.Next(),
	)
	args = append(args, string(must.NotFail(sjson.MarshalSingleValue(v))))

	return
}

// quoteFieldName returns a field name (client-supplied) as an SQL string literal: the same
// quoting FerretDB uses for the field names of its CREATE INDEX (metadata.quoteString, not
// exported), so the expression here is character for character the index's. Safe because
// FerretDB refuses connections without standard_conforming_strings=on and client_encoding=UTF8
// (metadata/pool/opendb.go), and BSON field names cannot contain NUL.
func quoteFieldName(field string) string {
	return "'" + strings.ReplaceAll(field, "'", "''") + "'"
}
