set datafile missing '?'
set title "uts-T3: speedup over serial (tree=T3 uts_params=-t 0 -b 2000 -q 0.124875 -m 8 -r 42 nodes=4112897 leaves=3599034 depth=1572 expected_from=published)" noenhanced
set xlabel 'workers'
set ylabel 'speedup (serial median / median)'
set key top left
set grid
set xrange [0.8:2.3]
set yrange [0:*]
set xtics (1, 2)
set terminal svg size 720,480 dynamic background rgb 'white'
set output 'uts-T3.svg'
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', 'uts-T3.dat' using 1:2 title 'forkline' with linespoints lw 2 pt 7, 'uts-T3.dat' using 1:3 title 'tbb' with linespoints lw 2 pt 7, 'uts-T3.dat' using 1:4 title 'omp' with linespoints lw 2 pt 7
set terminal pngcairo size 720,480
set output 'uts-T3.png'
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', 'uts-T3.dat' using 1:2 title 'forkline' with linespoints lw 2 pt 7, 'uts-T3.dat' using 1:3 title 'tbb' with linespoints lw 2 pt 7, 'uts-T3.dat' using 1:4 title 'omp' with linespoints lw 2 pt 7
unset output
